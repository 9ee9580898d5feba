"""Fuzzing the command line itself, as a hostile user would: every option of `release` given a bad
value, `evaluate` fed broken tables, `audit` fed broken release folders. Each must end in one line on
stderr and exit 2 (audit: 1 for a folder that is not an intact release), never a traceback, and
before any run starts. Runs in-process through `main`, so it stays fast."""

import json
import os
import string

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synth_pipeline.cli import main

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FAST = settings(max_examples=EXAMPLES, deadline=None, derandomize="FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TEXT = st.text(alphabet=string.ascii_letters + string.digits + "_-.,= /", min_size=1, max_size=20)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    progress = ("synth-pipeline: ", "reproduce [", "[")  # what a command says while it works
    lines = [line for line in err.splitlines() if line and not line.startswith(progress)]
    assert len(lines) == 1, err
    return lines[0]


def _exit(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse
        return int(e.code)


BAD_CONFIGS = st.one_of(
    st.just([1, 2]), st.just("text"), st.just({"seed": "1"}), st.just({"seed": -4}),
    st.just({"thresholds": {"memorisation_max": 5}}), st.just({"thresholds": {"dcr_share_max": "0.1"}}),
    st.just({"thresholds": {"tstr_ratio_min": -0.5}}), st.just({"holdout_fraction": 0.9}),
    st.just({"small_cell_k": 1}), st.just({"on_rare_categories": "keep"}), st.just({"link_attacks": 3}),
    st.dictionaries(TEXT.filter(lambda k: k not in ("data", "target", "generator")), st.integers(), min_size=1,
                    max_size=2),
)


@FAST
@given(config=BAD_CONFIGS)
def test_a_bad_config_file_is_one_line_and_exit_2(tmp_path_factory, capsys, config):
    tmp = tmp_path_factory.mktemp("cfg")
    path = tmp / "c.json"
    path.write_text(json.dumps(config))
    assert _exit(["release", "--data", "actg175", "--out", str(tmp / "out"), "--config", str(path)]) == 2
    line = _one_line(capsys)
    assert "c.json" in line or "config" in line
    assert not (tmp / "out" / "actg175").exists()


OPTIONS = st.sampled_from([
    ("--seed", st.one_of(st.integers(max_value=-1).map(str), st.integers(min_value=2**32).map(str), TEXT.filter(
        lambda s: not s.strip().lstrip("-").isdigit()))),
    ("--generator", TEXT.filter(lambda s: s not in {"copy", "ros", "rus", "smote", "tvae", "ctgan", "adasyn"})),
    ("--conditions", TEXT.filter(lambda s: "=" not in s)),
    ("--on-identifiers", TEXT.filter(lambda s: s not in ("drop", "refuse"))),
    ("--on-rare-categories", TEXT.filter(lambda s: s not in ("pool", "refuse"))),
    ("--small-cell-k", st.one_of(st.integers(max_value=1).map(str), TEXT.filter(lambda s: not s.isdigit()))),
    ("--data", TEXT.map(lambda s: f"nope-{s}")),
])


@FAST
@given(option=OPTIONS, data=st.data())
def test_every_release_option_with_a_bad_value_is_one_line_and_exit_2(tmp_path_factory, capsys, option, data):
    name, values = option
    value = data.draw(values)
    tmp = tmp_path_factory.mktemp("opt")
    argv = ["release", "--out", str(tmp / "out"), name, value]
    if name != "--data":
        argv += ["--data", "actg175"]
    assert _exit(argv) == 2, argv
    _one_line(capsys)


BROKEN_TABLES = st.sampled_from([
    b"", b"\x00\x01\x02binary", b"a,b\n", "\ufeffage;y\n1;a\n".encode("utf-16-le"), b"\x1f\x8b\x08gzip",
    b"y\nonly,one,column,too,many\n1,2\n", b"@relation x\n@attribute a numeric\n@data\n1\n",
])


@FAST
@given(content=BROKEN_TABLES, suffix=st.sampled_from([".csv", ".parquet", ".arff", ".csv.gz", ".txt"]),
       which=st.sampled_from(["--train", "--holdout", "--synthetic"]))
def test_evaluate_on_broken_tables_is_one_line_and_exit_2(tmp_path_factory, capsys, content, suffix, which):
    tmp = tmp_path_factory.mktemp("ev")
    good = tmp / "good.csv"
    pd.DataFrame({"age": [50.0, 61.0, 72.0, 83.0] * 10, "y": ["a", "b"] * 20}).to_csv(good, index=False)
    bad = tmp / f"bad{suffix}"
    bad.write_bytes(content)
    files = {"--train": good, "--holdout": good, "--synthetic": good, which: bad}
    argv = ["evaluate", "--target", "y", *[x for k, v in files.items() for x in (k, str(v))]]
    assert _exit(argv) == 2, (which, suffix, content[:20])
    _one_line(capsys)


MANIFESTS = st.one_of(
    st.just("[]"), st.just("null"), st.just("{}"), st.just('{"files": [1, 2]}'), st.just('{"files": {"a": 3}}'),
    st.just("not json"), st.just('{"release_id": 5, "verdict": "published", "files": {}}'),
    st.binary(max_size=30).map(lambda b: b.decode("latin-1")),
)


@FAST
@given(manifest=MANIFESTS)
def test_audit_of_a_broken_folder_says_what_is_wrong_without_a_traceback(tmp_path_factory, capsys, manifest):
    folder = tmp_path_factory.mktemp("rel") / "20260101-x-000000000000"
    folder.mkdir()
    (folder / "manifest.json").write_text(manifest)
    assert _exit(["audit", str(folder)]) in (1, 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip()


def test_audit_of_a_missing_folder_and_a_bad_key_file(tmp_path, capsys):
    assert _exit(["audit", str(tmp_path / "nope")]) in (1, 2)
    assert "Traceback" not in capsys.readouterr().err
    key = tmp_path / "key.pem"
    key.write_text("not a key")
    assert _exit(["audit", str(tmp_path), "--public-key", str(key)]) == 2
    _one_line(capsys)


@pytest.mark.parametrize("argv", [["reproduce", "/nonexistent/release"], ["mri-release", "--out", "o", "--size", "7"],
                                  ["mri-release", "--out", "o", "--budget", "huge"], ["turing-score", "a.csv", "b"]])
def test_other_commands_on_bad_arguments(tmp_path, capsys, argv, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _exit(argv) == 2
    _one_line(capsys)
