"""The `synth-pipeline` command as a user runs it: exit codes, one-line errors, nothing written."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from synth_pipeline.data import load_dataset

CLI = [sys.executable, "-m", "synth_pipeline.cli"]


def run(*args: str, cwd: Path, **env_extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"} | env_extra
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.fixture(scope="module")
def flchain_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "flchain.csv"
    load_dataset("flchain").raw.to_csv(path, index=False)
    return path


def _bad_inputs(tmp: Path, flchain_csv: Path) -> dict[str, tuple[list[str], str]]:
    empty = tmp / "empty.csv"
    empty.write_text("")
    header = tmp / "header.csv"
    header.write_text("a,b,c\n")
    one_class = tmp / "one_class.csv"
    df = pd.read_csv(flchain_csv)
    df.assign(death="dead").to_csv(one_class, index=False)
    tiny = tmp / "tiny.csv"
    df.groupby("death").head(6).to_csv(tiny, index=False)
    return {
        "too few rows (a failed expectation)": (["--data", str(tiny), "--target", "death"], "expect_table_row_count"),
        "missing file": (["--data", str(tmp / "nope.csv"), "--target", "death"], "nope.csv"),
        "unknown target": (["--data", str(flchain_csv), "--target", "outcome"], "outcome"),
        "one-class target": (["--data", str(one_class), "--target", "death"], "1 class"),
        "empty table": (["--data", str(empty), "--target", "death"], "empty"),
        "header only": (["--data", str(header), "--target", "a"], "header.csv"),
        "unknown generator": (["--data", "flchain", "--generator", "magic"], "magic"),
        "unknown sensitive column": (["--data", "flchain", "--sensitive-columns", "age,hiv_status"],
                                     "sensitive_columns names unknown column 'hiv_status'"),
    }


@pytest.mark.parametrize("case", ["too few rows (a failed expectation)", "missing file", "unknown target", "one-class target", "empty table", "header only",
                                  "unknown generator", "unknown sensitive column"])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, flchain_csv, case):
    args, needle = _bad_inputs(tmp_path, flchain_csv)[case]
    out = tmp_path / "releases"
    proc = run("release", *args, "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line and not line.startswith("synth-pipeline: releasing")]
    assert len(lines) == 1, proc.stderr
    assert needle.lower() in lines[0].lower()
    assert not any(p.is_file() for p in out.rglob("*")) if out.exists() else True


def test_csv_path_release_with_drop_and_ids_then_audit(tmp_path, flchain_csv):
    out = tmp_path / "releases"
    proc = run("release", "--data", str(flchain_csv), "--target", "death", "--drop", "futime,chapter",
               "--generator", "gaussian_copula", "--out", str(out), cwd=tmp_path, SYNTH_PROGRESS="1")
    assert proc.returncode == 0, proc.stderr
    for step in ("fitted_generator", "synthetic_candidate_dcr_gate", "privacy_report", "release"):  # progress, timed
        assert re.search(rf"^\[ *[0-9.]+s\] {step}: done in [0-9.]+ s$", proc.stderr, re.M), proc.stderr
    rel = Path(proc.stdout.split("published ")[1].strip())
    synthetic = pd.read_parquet(rel / "synthetic.parquet")
    assert "futime" not in synthetic.columns and "chapter" not in synthetic.columns
    assert run("audit", str(rel), cwd=tmp_path).returncode == 0
    (rel / "report.html").chmod(0o644)
    (rel / "report.html").write_text("tampered")
    bad = run("audit", str(rel), cwd=tmp_path)
    assert bad.returncode == 1 and "report.html" in bad.stderr


def test_evaluate_json_on_existing_tables(tmp_path):
    from synth_pipeline.preprocess import model_table, split

    loaded = load_dataset("actg175")
    parts = split(model_table(loaded.raw, loaded.schema), loaded.schema, holdout_fraction=0.3, seed=0)
    paths = {}
    for name, frame in (("train", parts.train), ("holdout", parts.holdout), ("synthetic", parts.train)):
        paths[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(paths[name])
    proc = run("evaluate", "--train", str(paths["train"]), "--holdout", str(paths["holdout"]),
               "--synthetic", str(paths["synthetic"]), "--target", "cens", "--json", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr  # refused, like `release`: a CI job can gate on it
    import json

    doc = json.loads(proc.stdout)
    assert doc["verdict"] == "refuse"  # the synthetic table *is* the training table
    assert {g["gate"]: g["passed"] for g in doc["gates"]}["dcr_gate"] is False


def test_generators_lists_every_name(tmp_path):
    proc = run("generators", cwd=tmp_path)
    tabular, mri = proc.stdout.split("\n\nMRI models")
    names = {line.split()[0] for line in tabular.splitlines()}
    assert {"gaussian_copula", "ctgan", "tvae", "smote", "copy", "perturbed_copy", "cwgan_gp", "diffusion"} <= names
    mri_names = {line.split()[0] for line in mri.splitlines()[1:]}
    assert mri_names == {"dcgan", "wgan_gp", "r3gan_stacked", "r3gan_positional", "stylegan3_stacked",
                         "stylegan3_positional", "r3gan_3d", "diffusion", "copy"}


def test_reproduce_from_a_moved_input_compares_the_bytes_on_disk(tmp_path, flchain_csv):
    import shutil

    data = tmp_path / "flchain.csv"
    shutil.copy(flchain_csv, data)
    out, work = tmp_path / "releases", tmp_path / "work"
    cheap = tmp_path / "cheap.json"  # reproduce re-runs the manifest's config: fewer attacks, four fast runs
    cheap.write_text('{"link_attacks": 200, "generator": "gaussian_copula"}')
    # released with --executor multiprocess (each step in a process of its own, the gates side by side):
    # progress lines, no intermediates left, and `reproduce` (in-process) gives the same bytes
    proc = run("release", "--data", str(data), "--target", "death", "--drop", "futime,chapter", "--config", str(cheap),
               "--executor", "multiprocess", "--out", str(out), cwd=tmp_path, SYNTH_PROGRESS="1",
               SYNTH_WORK_DIR=str(work))
    assert proc.returncode == 0, proc.stderr
    for step in ("synthetic_candidate_dcr_gate", "synthetic_candidate_tstr_gate", "privacy_report", "release"):
        assert re.search(rf"^\[ *[0-9.]+s\] {step}: done in [0-9.]+ s$", proc.stderr, re.M), proc.stderr
    assert "DEBUG" not in proc.stderr
    assert not work.exists() or list(work.iterdir()) == []
    rel = Path(proc.stdout.split("published ")[1].strip())
    moved = tmp_path / "moved" / "flchain.csv"
    moved.parent.mkdir()
    shutil.move(data, moved)
    gone = run("reproduce", str(rel), cwd=tmp_path)
    assert gone.returncode == 2 and "--input" in gone.stderr.splitlines()[-1]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    same = run("reproduce", str(rel), "--input", str(moved), cwd=tmp_path, TMPDIR=str(scratch))
    assert same.returncode == 0, same.stderr
    assert "byte-identical" in same.stdout
    assert "reproduce [" in same.stderr and " s] " in same.stderr
    assert list(scratch.iterdir()) == []
    changed_input = pd.read_csv(moved)
    changed_input.loc[0, "age"] += 1  # one age changed in the input
    changed_input.to_csv(data, index=False)
    wrong = run("reproduce", str(rel), "--input", str(data), cwd=tmp_path)
    assert wrong.returncode == 2
    (line,) = [x for x in wrong.stderr.splitlines() if not x.startswith("reproduce [")]
    assert "--input" in line and "sha256" in line
    changed = run("reproduce", str(rel), cwd=tmp_path)  # the changed file at the release's own path
    assert changed.returncode == 1 and "input" in changed.stderr and "sha256" in changed.stderr
    own_root = run("reproduce", str(rel), "--input", str(moved), "--out", str(out), cwd=tmp_path)
    assert own_root.returncode == 2 and "new or empty folder" in own_root.stderr
    target = rel / "synthetic.parquet"
    target.chmod(0o644)
    flipped = bytearray(target.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF
    target.write_bytes(bytes(flipped))
    forged = run("reproduce", str(rel), "--input", str(moved), cwd=tmp_path)
    assert forged.returncode == 1, forged.stderr
    assert "synthetic.parquet: bytes on disk differ" in forged.stderr
    again = run("release", "--data", str(moved), "--target", "death", "--drop", "futime,chapter", "--config", str(cheap),
                "--out", str(out), cwd=tmp_path)
    assert again.returncode == 3 and "published" not in again.stdout
    assert "already exists with other contents" in again.stderr and "synthetic.parquet" in again.stderr


def test_on_identifiers_refuse_exits_2_naming_the_column(tmp_path, flchain_csv):
    df = pd.read_csv(flchain_csv)
    df["contact"] = [f"patient{i}@example.org" for i in range(len(df))]
    path = tmp_path / "with_email.csv"
    df.to_csv(path, index=False)
    proc = run("release", "--data", str(path), "--target", "death", "--drop", "futime,chapter",
               "--on-identifiers", "refuse", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "contact" in proc.stderr and "email" in proc.stderr
    assert not (tmp_path / "out").exists() or not any(p.is_file() for p in (tmp_path / "out").rglob("*"))


def test_evaluate_bad_files_are_one_line_each(tmp_path):
    """latin-1, UTF-16 without BOM, gzip, nested Parquet, a wrong column set: exit 2, one line, the file named."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    train = tmp_path / "train.csv"
    pd.DataFrame({"age": [50, 60, 70, 80] * 10, "y": ["a", "b"] * 20}).to_csv(train, index=False)
    gz = tmp_path / "holdout.csv.gz"
    gz.write_bytes(__import__("gzip").compress(train.read_bytes()))
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(train.read_text().encode("utf-16-le"))
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"age": [[1, 2]] * 40, "y": ["a", "b"] * 20}), nested)
    wrong = tmp_path / "wrong.csv"
    pd.DataFrame({"weight": [1.0] * 40, "y": ["a", "b"] * 20}).to_csv(wrong, index=False)
    for bad in (gz, utf16, nested, wrong):
        proc = run("evaluate", "--train", str(train), "--holdout", str(bad), "--synthetic", str(train),
                   "--target", "y", cwd=tmp_path)
        assert proc.returncode == 2, (bad.name, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert bad.name in proc.stderr or "columns" in proc.stderr, proc.stderr


def test_a_table_with_only_categorical_columns_releases(tmp_path):
    """No numeric column at all (the DCR embedding used to crash on it): the copula publishes."""
    loaded = load_dataset("actg175")
    path = tmp_path / "categorical_only.csv"
    loaded.raw[loaded.schema.categorical].to_csv(path, index=False)
    config = tmp_path / "c.json"
    config.write_text('{"link_attacks": 200, "generator": "gaussian_copula"}')
    proc = run("release", "--data", str(path), "--target", "cens", "--config", str(config), "--out",
               str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rel = Path(proc.stdout.split("published ")[1].strip())
    assert set(pd.read_parquet(rel / "synthetic.parquet").columns) <= set(loaded.schema.categorical)


def test_auto_executor_is_chosen_by_the_input_rows(tmp_path, monkeypatch):
    from synth_pipeline import cli
    from synth_pipeline.data.readers import table_rows

    small, big = tmp_path / "small.csv", tmp_path / "big.parquet"
    small.write_text("a,b\n1,2\n3,4")  # no final line break: still two rows
    pd.DataFrame({"a": range(cli.MULTIPROCESS_MIN_ROWS)}).to_parquet(big)
    assert table_rows(small) == 2 and table_rows(big) == cli.MULTIPROCESS_MIN_ROWS
    assert table_rows(tmp_path / "absent.csv") is None
    monkeypatch.setattr(cli, "parallel_steps", lambda: 2)
    assert cli.choose_executor("auto", table_rows(small)) == "in_process"
    assert cli.choose_executor("auto", table_rows(big)) == "multiprocess"
    assert cli.choose_executor("auto", None) == "in_process"  # bundled tables, SQL: small or unknown
    assert cli.choose_executor("in_process", table_rows(big)) == "in_process"
    monkeypatch.setattr(cli, "parallel_steps", lambda: 1)
    assert cli.choose_executor("auto", table_rows(big)) == "in_process"  # one core: nothing to run side by side
