"""The Python API (`import synth_pipeline as sp`): a light import, one-line BadInput for bad arguments
before any work, and the README's "Python API" example run as written (a real release and a real
evaluation; no temporary copy of the rows left behind)."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

import synth_pipeline as sp
from synth_pipeline.errors import BadInput

README = Path(__file__).resolve().parent.parent / "README.md"


def test_import_is_light_and_the_public_names_resolve():
    code = ("import sys, synth_pipeline as sp; heavy = [m for m in ('dagster', 'torch', 'pandas', 'sdv') if m in sys.modules]; "
            "assert not heavy, heavy; print(sorted(sp.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(README.parent)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(sorted(["EvaluationResult", "ReleaseResult", "__version__", "evaluate", "release"]))
    for name in sp.__all__:
        assert getattr(sp, name) is not None


def test_release_is_the_api_function_even_after_the_core_modules_load():
    import synth_pipeline.kernel  # noqa: F401 - the release kernel, imported by every run
    from synth_pipeline.api import release

    assert sp.release is release and callable(sp.release)


FRAME = pd.DataFrame({"x": [0.3, 2.7, 1.1, 4.9, 3.3, 0.8, 2.2, 5.6, 1.4, 3.9] * 2, "y": ["a", "b"] * 10})


@pytest.mark.parametrize("call, expected", [
    (lambda out: sp.release([[1, 2]], target="y", out=out), "df: expected a pandas DataFrame, got list"),
    (lambda out: sp.release(FRAME.iloc[:0], target="y", out=out), "df: the DataFrame is empty"),
    (lambda out: sp.release(FRAME, target="z", out=out), "df: unknown target column 'z' (available: x, y)"),
    (lambda out: sp.release(FRAME.set_axis([0, "y"], axis=1), target="y", out=out), "df: column names must be strings"),
    (lambda out: sp.release(FRAME, target="y", out=out, name="../up"), "name '../up' is not a safe name"),
    (lambda out: sp.release(FRAME, target="y", out=out / "file"), "exists and is not a folder"),
    (lambda out: sp.release(FRAME, target="y", out=out, generator="gausian_copula"), "did you mean gaussian_copula"),
    (lambda out: sp.release(FRAME, target="y", out=out, seeds=3), "config: unknown key 'seeds'"),
    (lambda out: sp.release(FRAME, target="y", out=out, data="flchain"), "set by the call's own arguments"),
    (lambda out: sp.evaluate(train=FRAME, holdout=FRAME, synthetic="s.csv", target="y"), "synthetic: expected a pandas DataFrame"),
    (lambda out: sp.evaluate(train=FRAME, holdout=FRAME.drop(columns="x"), synthetic=FRAME, target="y"),
     "holdout: does not have the train columns"),
])
def test_bad_arguments_raise_one_line_bad_input(tmp_path, call, expected):
    (tmp_path / "file").write_text("")
    with pytest.raises(BadInput) as err:
        call(tmp_path)
    msg = str(err.value)
    assert expected in msg and "\n" not in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing written


def test_evaluate_takes_its_tables_by_keyword_only():
    with pytest.raises(TypeError):
        sp.evaluate(FRAME, FRAME, FRAME, target="y")  # type: ignore[misc]


def _readme_example() -> str:
    section = README.read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_readme_example_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    before = set(Path(tempfile.gettempdir()).glob("synth-api-*"))
    scope: dict = {}
    exec(compile(_readme_example(), "README.md#python-api", "exec"), scope)
    result, scores = scope["result"], scope["scores"]
    assert result.verdict == "published", result.message
    assert result.release_dir.parent == tmp_path / "releases" / "actg175"
    assert (result.release_dir / "synthetic.parquet").is_file() and result.manifest_path.is_file()
    assert [g.gate for g in result.gates] == ["dcr_gate", "linkability_gate", "tstr_gate", "inference_gate",
                                              "fidelity_gate"]
    assert all(g.passed for g in result.gates)
    assert result.run_id in result.manifest_path.read_text()
    assert "days" not in pd.read_parquet(result.release_dir / "synthetic.parquet").columns
    # a sample of the training rows: the same DCR gate refuses it
    assert scores.verdict == "refuse" and not next(g for g in scores.gates if g.gate == "dcr_gate").passed
    assert scores.metric("memorisation_rate").value > 0.5 and set(scores.reports) == {"fidelity", "utility", "privacy"}
    assert set(Path(tempfile.gettempdir()).glob("synth-api-*")) == before  # the rows' temp copy is gone
    assert "published" in capsys.readouterr().out


def test_a_refused_release_returns_every_gate_and_the_refusal_record(tmp_path):
    import dagster as dg

    from synth_pipeline.data import load_dataset

    df = load_dataset("actg175").raw
    result = sp.release(df, target="cens", generator="perturbed_copy", out=tmp_path, name="actg175", drop=["days"],
                        instance=dg.DagsterInstance.ephemeral())
    assert result.verdict == "refused" and not result.published and result.release_dir is None
    assert result.refusal_record == tmp_path / "actg175" / "refusals" / f"{result.run_id}.json"
    assert result.refusal_record.is_file()
    gates = {g.gate: g for g in result.gates}
    assert {"dcr_gate", "linkability_gate", "tstr_gate", "inference_gate", "fidelity_gate"} <= set(gates)  # passing ones too
    assert gates["tstr_gate"].passed  # a near-copy predicts as well as the real rows
    assert not gates["dcr_gate"].passed and gates["dcr_gate"].metrics
    assert "dcr_gate" in result.message
    assert [p.name for p in (tmp_path / "actg175").iterdir()] == ["refusals"]  # nothing published
