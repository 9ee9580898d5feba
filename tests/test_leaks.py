"""Nothing rare leaves in a value: a table whose identifiers do not look like identifiers (an e-mail
column a quarter "unknown", a patient code repeated per patient, unique 9-digit numbers named `code`)
and 30 diagnoses held by one patient each, released through the real CLI; no such value may be in any
file the run writes (release, refusals, Dagster's instance, temporary files), and the manifest says
what was removed or pooled and why. Plus the pooling rule itself, unit by unit."""

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synth_pipeline.config import RunConfig
from synth_pipeline.data import BUNDLED, load_dataset
from synth_pipeline.errors import BadInput
from synth_pipeline.small_cells import RARE_LABEL, check_target, pool_rare_categories
from synth_pipeline.schema import ColumnSpec

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "synth_pipeline.cli"]
COMMON = ["hypertension", "asthma", "diabetes type 2", "copd", "migraine", "depression", "osteoarthritis", "none"]
IDENTIFIERS = ("email", "patient_code", "code")


def leak_table(n: int = 2400, seed: int = 0) -> pd.DataFrame:
    """The issue's table: three identifier columns that do not look like ones, 30 one-patient
    diagnoses, and ordinary clinical columns that carry the outcome."""
    rng = np.random.default_rng(seed)
    pcode = np.repeat([f"P{x:06d}" for x in rng.choice(10**6, n // 2, replace=False)], 2)
    rng.shuffle(pcode)
    email = np.array([f"user{x}.x{i}@mail-{i % 7}.example.com" for i, x in enumerate(rng.choice(10**7, n, replace=False))],
                     dtype=object)
    email[rng.random(n) < 0.25] = "unknown"
    code = rng.choice(np.arange(100_000_000, 1_000_000_000), n, replace=False)
    dx = rng.choice(COMMON, n).astype(object)
    dx[rng.choice(n, 30, replace=False)] = [f"rare syndrome {chr(65 + i // 10)}{i % 10}x" for i in range(30)]
    age = rng.integers(18, 90, n)
    sex = rng.choice(["F", "M"], n)
    bmi = np.round(rng.normal(27, 4.5, n), 2)
    creatinine = np.round(rng.lognormal(0, 0.3, n), 2)
    logit = -1 + 0.08 * (age - 50) + 0.25 * (bmi - 27) + 1.0 * (sex == "M")
    outcome = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"email": email, "patient_code": pcode, "code": code, "diagnosis": dx, "age": age,
                         "sex": sex, "bmi": bmi, "creatinine": creatinine, "outcome": outcome})


def needles(table: pd.DataFrame) -> dict[str, str]:
    """Every real identifier value and every diagnosis held by fewer than 5 patients -> its column."""
    out = {str(v): c for c in IDENTIFIERS for v in table[c].unique() if str(v) != "unknown"}
    counts = table["diagnosis"].value_counts()
    out.update({v: "diagnosis" for v in counts[counts < 5].index})
    return out


def leaked(roots: list[Path], values: dict[str, str]) -> dict[str, set[str]]:
    """{file: values found} over every file under `roots`, read as bytes (sqlite databases included);
    Parquet files are also decoded (their pages may be compressed). A value counts only as a whole
    token (a 9-digit code inside a longer number is not that code)."""
    rx = re.compile(rb"(?<![A-Za-z0-9])(" + b"|".join(re.escape(v.encode()) for v in sorted(values, key=len, reverse=True))
                    + rb")(?![A-Za-z0-9])")
    found: dict[str, set[str]] = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if not p.is_file():
                continue
            data = p.read_bytes()
            if p.suffix == ".parquet":
                data += pd.read_parquet(p).to_csv().encode()
            hits = {m.group(1).decode() for m in rx.finditer(data)}
            if hits:
                found[str(p)] = hits
    return found


def cli(*args: str, home: Path, tmp: Path) -> subprocess.CompletedProcess:
    home.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "TMPDIR": str(tmp)}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=tmp, env=env, timeout=900)


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    table = leak_table()
    path = tmp_path_factory.mktemp("data") / "clinic.csv"
    table.to_csv(path, index=False)
    return table, path


@pytest.fixture(scope="module")
def released(table_csv, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    _, path = table_csv
    run = tmp_path_factory.mktemp("run")
    config = run / "config.json"
    config.write_text(json.dumps({"link_attacks": 300, "generator": "gaussian_copula"}))
    proc = cli("release", "--data", str(path), "--target", "outcome", "--config", str(config), "--out",
               str(run / "out"), home=run / "home", tmp=run / "tmp")
    return proc, run


def test_no_identifier_or_rare_value_in_any_file_the_run_writes(table_csv, released) -> None:
    table, _ = table_csv
    proc, run = released
    assert proc.returncode == 0, proc.stderr[-2000:]  # the copula publishes this table
    values = needles(table)
    assert len(values) > 3000 and sum(c == "diagnosis" for c in values.values()) == 30
    files = [p for p in run.rglob("*") if p.is_file()]
    assert any(p.name == "synthetic.parquet" for p in files) and any(p.suffix == ".db" for p in files)
    assert leaked([run / "out", run / "home", run / "tmp"], values) == {}
    # the scan finds what it looks for: the input file itself holds every value
    assert leaked([table_csv[1].parent], values) == {str(table_csv[1]): set(values)}


def test_manifest_names_the_columns_with_evidence_and_pools_by_count(table_csv, released) -> None:
    table, _ = table_csv
    _, run = released
    [manifest] = (run / "out").rglob("manifest.json")
    doc = json.loads(manifest.read_text())
    schema = doc["schema"]
    assert set(schema["identifiers"]) == set(IDENTIFIERS)
    notes = schema["notes"]
    assert notes["identifier:email"].startswith("email: ") and "placeholder values set aside" in notes["identifier:email"]
    assert "repeated per patient" in notes["identifier:patient_code"] and "1200 distinct in 2400" in notes["identifier:patient_code"]
    assert "fixed 9-digit length" in notes["identifier:code"] and "near-unique" in notes["identifier:code"]
    assert notes["pooled:diagnosis"].startswith("pooled: 30 value(s) held by fewer than 5 patients each (30 rows)")
    assert doc["config"]["small_cell_k"] == 5 and doc["config"]["on_rare_categories"] == "pool"
    # every category the manifest or its plots name is held by >= k real patients (or is the pool)
    counts = table["diagnosis"].value_counts()
    [dx] = [c for c in schema["columns"] if c["name"] == "diagnosis"]
    assert set(dx["categories"]) == {*COMMON, RARE_LABEL}
    assert all(counts[c] >= 5 for c in COMMON)
    plotted = {c["name"]: c for c in doc["plots_data"]["columns"]["columns"]}
    assert {b["category"] for b in plotted["diagnosis"]["categories"]} <= {*COMMON, RARE_LABEL}
    assert not set(IDENTIFIERS) & {c["name"] for c in schema["columns"]}
    synthetic = pd.read_parquet(manifest.parent / "synthetic.parquet")
    assert set(synthetic["diagnosis"].dropna()) <= {*COMMON, RARE_LABEL}


def test_a_refused_run_records_no_value(table_csv, tmp_path) -> None:
    """The copy control is refused; its refusal record, report page and Dagster events hold none of
    the values either."""
    table, path = table_csv
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"link_attacks": 300}))
    proc = cli("release", "--data", str(path), "--target", "outcome", "--generator", "copy", "--config", str(config),
               "--out", str(tmp_path / "out"), home=tmp_path / "home", tmp=tmp_path / "tmp")
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert list((tmp_path / "out").rglob("refusals/*.json")) and list((tmp_path / "out").rglob("refusals/*.html"))
    assert leaked([tmp_path / "out", tmp_path / "home", tmp_path / "tmp"], needles(table)) == {}


def test_refuse_options_exit_2_naming_the_columns_and_no_value(table_csv, tmp_path) -> None:
    table, path = table_csv
    proc = cli("release", "--data", str(path), "--target", "outcome", "--on-identifiers", "refuse", "--out",
               str(tmp_path / "out"), home=tmp_path / "home", tmp=tmp_path / "tmp")
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    for column, kind in (("email", "email"), ("patient_code", "record_number"), ("code", "record_number")):
        assert f"'{column}' ({kind})" in line
    assert not (tmp_path / "out").exists() or not any(p.is_file() for p in (tmp_path / "out").rglob("*"))

    proc = cli("release", "--data", str(path), "--target", "outcome", "--on-rare-categories", "refuse", "--out",
               str(tmp_path / "out2"), home=tmp_path / "home2", tmp=tmp_path / "tmp2")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "'diagnosis' (30 values, 30 rows)" in proc.stderr
    assert not {v for v in needles(table) if v in proc.stderr}
    assert leaked([tmp_path / "home2"], needles(table)) == {}


def _specs(df: pd.DataFrame) -> tuple[ColumnSpec, ...]:
    from synth_pipeline.data.infer import infer_spec

    return tuple(infer_spec(df[c]) for c in df.columns)


def _pool(df: pd.DataFrame, k: int = 5, keys=()):
    return pool_rare_categories(df, df.index, _specs(df), target="y", k=k, on_rare="pool", where="t.csv",
                                declared=None, keys=keys)


def test_pooling_rules() -> None:
    # rare values whose pool reaches k become one value; the categories list only what is left
    df = pd.DataFrame({"dx": ["a"] * 20 + ["b"] * 20 + ["r1", "r2", "r3", "r4", "r5", "r6"], "y": ["0", "1"] * 23})
    out, specs, [p] = _pool(df)
    assert (p.values, p.rows, p.into) == (6, 6, RARE_LABEL)
    assert specs[0].categories == ("a", "b", RARE_LABEL) and (out["dx"] == RARE_LABEL).sum() == 6
    assert "r1" not in p.note(5)
    # a pool itself held by fewer than k joins the most frequent category (never a named small group)
    df2 = df.iloc[:42]
    out, specs, [p] = _pool(df2)
    assert p.into == "most_frequent" and specs[0].categories == ("a", "b") and set(out["dx"]) == {"a", "b"}
    # patients, not rows: 2 patients with 3 rows each hold 6 rows but fewer than k patients
    df3 = pd.DataFrame({"dx": ["a"] * 30 + ["x"] * 6 + ["b"] * 30, "y": ["0", "1"] * 33})
    key = pd.Series([f"p{i}" for i in range(30)] + ["q1"] * 3 + ["q2"] * 3 + [f"s{i}" for i in range(30)])
    assert _pool(df3)[2] == ()
    assert _pool(df3, keys=[key])[2][0].values == 1
    # k is the caller's: at k = 7 the 6-row pool is itself rare
    assert _pool(df, k=7)[2][0].into == "most_frequent"
    # a column of numeric codes stays one type once the pool's label joins it (Parquet-writable)
    df4 = pd.DataFrame({"grp": [1] * 20 + [2] * 20 + [3, 4, 5, 6, 7, 8], "y": ["0", "1"] * 23})
    out, specs, [p] = _pool(df4)
    assert specs[0].categories == ("1", "2", RARE_LABEL)
    assert pd.read_parquet(io.BytesIO(out.to_parquet()))["grp"].tolist() == ["1"] * 20 + ["2"] * 20 + [RARE_LABEL] * 6
    with pytest.raises(BadInput, match=r"'dx' \(6 values, 6 rows\)"):
        pool_rare_categories(df, df.index, _specs(df), target="y", k=5, on_rare="refuse", where="t.csv",
                             declared=None)


def test_rare_target_class_refused_without_naming_it() -> None:
    y = pd.Series(["alive"] * 50 + ["dead"] * 50 + ["transferred"] * 3, name="y")
    with pytest.raises(BadInput) as e:
        check_target(y, "t.csv", 5)
    assert "target column 'y'" in str(e.value) and "1 class(es)" in str(e.value) and "transferred" not in str(e.value)


def test_bundled_tables_hold_no_rare_category() -> None:
    """Pooling applies to declared schemas too, and changes none of the bundled tables: none holds a
    category value of 1-4 patients (a declared value no patient holds, like ACTG175 zprior '0', stays)."""
    for name, bundled in BUNDLED.items():
        loaded = load_dataset(name)
        assert not [k for k in loaded.schema.notes if k.startswith("pooled:")], name
        assert [c.categories for c in loaded.schema.columns] == [bundled.schema.column(c.name).categories
                                                                 for c in loaded.schema.columns]
        assert RARE_LABEL not in set(loaded.raw.astype(str).to_numpy().ravel())
        strict = load_dataset(name, on_rare_categories="refuse", small_cell_k=5)
        assert strict.schema.names == loaded.schema.names


def test_config_fields_are_validated() -> None:
    assert RunConfig().small_cell_k == 5 and RunConfig().on_rare_categories == "pool"
    for bad in ({"small_cell_k": 1}, {"small_cell_k": 2.5}, {"on_rare_categories": "keep"}):
        with pytest.raises(BadInput, match=next(iter(bad))):
            RunConfig.from_dict(bad)
    assert RunConfig.from_dict({"small_cell_k": 10}).small_cell_k == 10
