"""The command line checks its arguments before any heavy import: a typo, a bad seed or an unusable
--out is one line and exit 2 at once, with the nearest valid name suggested."""

import subprocess
import sys

import pytest

from synth_pipeline.cli import GENERATORS, MRI_MODELS, main
from synth_pipeline.registry import registered_names

PROBE = """
import sys
from synth_pipeline.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "dagster", "sdv", "pandas") if m in sys.modules)
print("HEAVY", ",".join(heavy)); sys.exit(code)
"""


def _probe(*args: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)


def test_the_static_name_index_equals_the_imported_registries():
    from synth_pipeline.generators.base import available
    from synth_pipeline.imaging.models.base import available_image_generators

    assert registered_names(GENERATORS) == sorted(available())
    assert registered_names(MRI_MODELS) == sorted(available_image_generators())


@pytest.mark.parametrize("args, says", [
    (["release", "--generator", "gausian_copula", "--out", "o"], "did you mean 'gaussian_copula'"),
    (["mri-release", "--model", "difusion", "--out", "o"], "did you mean 'diffusion'"),
    (["generators", "--params", "tvea"], "did you mean 'tvae'"),
])
def test_a_typo_is_one_line_with_a_suggestion_before_torch_or_dagster_load(tmp_path, args, says):
    proc = _probe(*args, tmp_path=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and says in proc.stderr
    assert "torch" not in proc.stdout.split("HEAVY")[-1] and "dagster" not in proc.stdout.split("HEAVY")[-1]


@pytest.mark.parametrize("seed", ["-1", "4294967296", "zero", "1.5"])
def test_a_bad_seed_is_one_line_naming_the_option(capsys, seed):
    with pytest.raises(SystemExit) as exit_:
        main(["release", "--seed", seed, "--out", "o"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--seed" in err and err.count("\n") == 1


def test_an_unusable_out_is_refused_before_the_run(tmp_path, capsys):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    assert main(["release", "--data", "flchain", "--out", str(a_file)]) == 2
    assert "--out" in capsys.readouterr().err
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    if not __import__("os").access(locked, __import__("os").W_OK):  # root can write anywhere
        assert main(["release", "--data", "flchain", "--out", str(locked)]) == 2


def test_version_help_and_parameters(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("synth-pipeline ")
    with pytest.raises(SystemExit):
        main(["release", "--help"])
    text = capsys.readouterr().out
    assert "exit codes: 0 published" in text and "default auto" in text
    assert main(["generators", "--params", "diffusion"]) == 0
    out = capsys.readouterr().out
    assert "guidance_scale" in out and "default 1.0" in out
