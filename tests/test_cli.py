"""The `synth-pipeline` command as a user runs it: exit codes, one-line errors, nothing written."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from synth_pipeline.data import load_dataset

CLI = [sys.executable, "-m", "synth_pipeline.cli"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
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
               "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
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
    assert proc.returncode == 0, proc.stderr
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
    assert mri_names == {"dcgan", "wgan_gp", "r3gan_stacked", "r3gan_positional", "diffusion", "copy"}


def test_reproduce_a_release_exactly_and_name_a_changed_input(tmp_path, flchain_csv):
    import shutil

    data = tmp_path / "flchain.csv"
    shutil.copy(flchain_csv, data)
    out = tmp_path / "releases"
    proc = run("release", "--data", str(data), "--target", "death", "--drop", "futime,chapter", "--out", str(out),
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rel = proc.stdout.split("published ")[1].strip()
    same = run("reproduce", rel, "--out", str(tmp_path / "again"), cwd=tmp_path)
    assert same.returncode == 0, same.stderr
    assert "reproduced exactly" in same.stdout
    changed_input = pd.read_csv(data)
    changed_input.loc[0, "age"] += 1  # one age changed in the input
    changed_input.to_csv(data, index=False)
    changed = run("reproduce", rel, "--out", str(tmp_path / "third"), cwd=tmp_path)
    assert changed.returncode == 1 and "input" in changed.stderr and "sha256" in changed.stderr


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
