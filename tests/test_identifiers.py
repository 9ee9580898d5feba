"""Direct identifiers: detected by kind on a real table with fake identifier columns added, never a
false positive on the real clinical columns, dropped (noted in the schema and manifest) or refused by
configuration, and none of their values anywhere in a release folder."""

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from synth_pipeline.config import RunConfig
from synth_pipeline.data import BUNDLED, load_dataset, slugify
from synth_pipeline.errors import BadInput
from synth_pipeline.identifiers import detect_identifiers
from synth_pipeline.kernel import audit, safe_name

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
         "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
         "Anna", "Lukas", "Sofia", "Mateo", "Chloe", "Noah", "Emma", "Liam", "Olivia", "Ava"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
        "O'Brien", "Müller", "Schmidt", "Dubois", "Rossi", "Kowalski", "Nakamura", "Okafor", "Silva", "Novak"]
WORDS = ["patient", "reports", "mild", "headache", "after", "dose", "nausea", "resolved", "follow", "up", "in",
         "two", "weeks", "rash", "on", "left", "arm", "no", "fever", "referred", "to", "cardiology", "denies",
         "chest", "pain", "family", "history", "of", "diabetes", "lives", "alone", "with", "daughter"]

EXPECTED = {
    "patient_name": "person_name",
    "email": "email",
    "phone": "phone",
    "ssn": "national_id",
    "mrn": "record_number",
    "date_of_birth": "date_of_birth",
    "clinician_notes": "free_text",
}


def fake_identifiers(n: int, seed: int = 0) -> pd.DataFrame:
    """Seeded fake direct identifiers, one row per patient (no network, no real person)."""
    rng = np.random.default_rng(seed)
    first = rng.choice(FIRST, n)
    last = rng.choice(LAST, n)
    serial = rng.permutation(np.arange(1000, 1000 + 10 * n, 10))[:n]
    dob = pd.Timestamp("1930-01-01") + pd.to_timedelta(rng.integers(0, 365 * 60, n), unit="D")
    notes = [
        " ".join(rng.choice(WORDS, rng.integers(6, 14))).capitalize() + f"; visit {i % 97} on day {int(rng.integers(1, 400))}."
        for i in range(n)
    ]
    return pd.DataFrame({
        "patient_name": [f"{f} {ln}" for f, ln in zip(first, last)],
        "email": [f"{f.lower()}.{ln.lower().replace(chr(39), '')}{s}@example.org" for f, ln, s in zip(first, last, serial)],
        "phone": [f"+1 ({rng.integers(200, 999)}) {rng.integers(200, 999)}-{s % 10000:04d}" for s in serial],
        "ssn": [f"{rng.integers(100, 899)}-{rng.integers(10, 99)}-{s % 10000:04d}" for s in serial],
        "mrn": [f"MRN{s:07d}" for s in serial],
        "date_of_birth": dob.strftime("%Y-%m-%d"),
        "clinician_notes": notes,
    })


@pytest.fixture(scope="module")
def actg_with_ids() -> pd.DataFrame:
    raw = load_dataset("actg175").raw
    return pd.concat([fake_identifiers(len(raw)), raw.reset_index(drop=True)], axis=1)


def test_detects_each_kind_and_the_real_identifiers(actg_with_ids: pd.DataFrame) -> None:
    found = {f.column: f for f in detect_identifiers(actg_with_ids, target="cens")}
    for column, kind in EXPECTED.items():
        assert column in found, column
        assert found[column].kind == kind, (column, found[column])
        assert found[column].share_matching >= 0.8 and found[column].reason
    # ACTG175's own identifiers (declared in its bundled schema) are found from the data alone
    assert found["Unnamed: 0"].kind == "record_number" and found["pidnum"].kind == "record_number"
    assert set(found) == {*EXPECTED, "Unnamed: 0", "pidnum"}


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_no_false_positive_on_real_clinical_columns(name: str) -> None:
    loaded = load_dataset(name)
    clinical = loaded.raw.drop(columns=list(loaded.schema.identifiers))
    assert detect_identifiers(clinical, target=loaded.schema.target) == []


def test_small_and_odd_tables() -> None:
    df = pd.DataFrame({
        "sex": ["F", "M"] * 15,
        "grade": ["I", "II", "III"] * 10,
        "age": np.arange(40, 70),  # unique whole numbers, but no id-like name: a measurement
        "weight": np.linspace(50, 90, 30),
        "Name": ["Anna", "Ben", "Carl", "Dora", "Emil"] * 6,  # hinted single names
        "admitted": pd.date_range("2020-01-01", periods=30, freq="D"),
        "y": ["a", "b"] * 15,
    })
    found = {f.column: f.kind for f in detect_identifiers(df, target="y")}
    assert found == {"Name": "person_name", "admitted": "date"}


def test_loader_drops_and_notes(tmp_path: Path, actg_with_ids: pd.DataFrame) -> None:
    path = tmp_path / "actg with ids (v2).csv"
    actg_with_ids.to_csv(path, index=False)
    loaded = load_dataset(str(path), target="cens", drop=["days"])
    schema = loaded.schema
    assert schema.dataset == "actg_with_ids_v2" and safe_name(schema.dataset, "dataset")
    assert set(schema.identifiers) == {*EXPECTED, "Unnamed: 0", "pidnum"}
    assert not set(schema.identifiers) & set(schema.names)
    assert schema.notes["identifier:email"] == "email: 100% of values match an e-mail pattern"
    for column, kind in EXPECTED.items():
        assert schema.notes[f"identifier:{column}"].startswith(f"{kind}: ")
    assert schema.names == load_dataset("actg175").schema.names
    assert "constant:zprior" in schema.notes


def test_refuse_names_columns_and_kinds(tmp_path: Path, actg_with_ids: pd.DataFrame) -> None:
    path = tmp_path / "actg_ids.csv"
    actg_with_ids.head(300).to_csv(path, index=False)
    with pytest.raises(BadInput) as e:
        load_dataset(str(path), target="cens", drop=["days"], on_identifiers="refuse")
    msg = str(e.value)
    assert "\n" not in msg and "actg_ids.csv" in msg
    for column, kind in EXPECTED.items():
        assert f"'{column}' ({kind})" in msg
    # listing them explicitly is the way through
    ok = load_dataset(str(path), target="cens", drop=["days"], on_identifiers="refuse",
                      id_columns=[*EXPECTED, "Unnamed: 0", "pidnum"])
    assert "identifier:email" not in ok.schema.notes
    with pytest.raises(BadInput, match="on_identifiers"):
        RunConfig.from_dict({"on_identifiers": "keep"})


@pytest.mark.parametrize(("stem", "slug"), [
    ("my data (v2)", "my_data_v2"), ("..", "data"), ("...secret", "secret"), ("a..b", "a.b"),
    ("Ünïcode name", "Unicode_name"), ("日本", "data"), ("x" * 200, "x" * 80), ("-_-", "data"),
])
def test_slugify_is_a_safe_name(stem: str, slug: str) -> None:
    assert slugify(stem) == slug
    assert safe_name(slugify(stem), "dataset")


def _values(df: pd.DataFrame) -> set[bytes]:
    out = set()
    for c in EXPECTED:
        out |= {str(v).encode() for v in df[c]}
        if c == "patient_name":
            out |= {json.dumps(str(v)).encode() for v in df[c]}  # as escaped inside JSON (O'Brien, Müller)
    return out


def test_release_contains_no_identifier_value(tmp_path: Path, actg_with_ids: pd.DataFrame) -> None:
    from synth_pipeline.cli import run_release

    path = tmp_path / "actg_ids.csv"
    actg_with_ids.to_csv(path, index=False)
    out = tmp_path / "releases"
    instance = dg.DagsterInstance.ephemeral()
    cfg = RunConfig.from_dict({"data": str(path), "target": "cens", "drop": ["days"], "link_attacks": 300,
                               "generator": "gaussian_copula"})
    outcome = run_release(cfg, out, instance=instance)
    assert outcome.status == "published", outcome.message  # seeded; ACTG175 publishes (README)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files
    needles = _values(actg_with_ids)
    for p in files:
        data = p.read_bytes()
        leaked = [v for v in needles if v in data]
        assert not leaked, (p, leaked[:3])
    rel = Path(outcome.path)
    assert audit(rel).ok
    schema = json.loads((rel / "manifest.json").read_text())["schema"]
    assert set(schema["identifiers"]) == {*EXPECTED, "Unnamed: 0", "pidnum"}
    for column, kind in EXPECTED.items():
        assert schema["notes"][f"identifier:{column}"].startswith(f"{kind}: ")
    assert not set(schema["identifiers"]) & {c["name"] for c in schema["columns"]}
    synthetic = pd.read_parquet(rel / "synthetic.parquet")
    assert not set(EXPECTED) & set(synthetic.columns)

    refused = run_release(cfg.with_overrides(on_identifiers="refuse"), tmp_path / "refused", instance=instance)
    assert refused.status == "bad_input" and refused.exit_code == 2
    assert "'email' (email)" in refused.message and "\n" not in refused.message
    assert not (tmp_path / "refused").exists() or not any(p.is_file() for p in (tmp_path / "refused").rglob("*"))


def _kinds(df: pd.DataFrame) -> dict[str, str]:
    return {f.column: f.kind for f in detect_identifiers(df, target="y")}


def test_patterns_are_judged_among_non_placeholder_values() -> None:
    rng = np.random.default_rng(1)
    n = 400
    emails = np.array([f"p{i}.{rng.integers(10**6)}@clinic.example" for i in range(n)], dtype=object)
    for word in ("unknown", "n/a", "-", "none", "", "missing"):
        col = emails.copy()
        col[rng.random(n) < 0.25] = word
        [f] = detect_identifiers(pd.DataFrame({"contact": col, "y": ["0", "1"] * (n // 2)}), target="y")
        assert f.kind == "email", word
        assert ("placeholder values set aside" in f.reason) == (word != ""), word  # "" is read as missing
    # a frequent value that is no known word is set aside too, as long as it does not match
    col = emails.copy()
    col[: n // 5] = "xyz"
    assert _kinds(pd.DataFrame({"contact": col, "y": ["0", "1"] * (n // 2)})) == {"contact": "email"}
    # placeholders are not a licence: most of the column placeholder, the rest is judged with them
    col = emails.copy()
    col[: int(n * 0.7)] = "unknown"
    assert detect_identifiers(pd.DataFrame({"contact": col, "y": ["0", "1"] * (n // 2)}), target="y") == []


def test_codes_repeated_per_patient_and_fixed_length_numbers() -> None:
    rng = np.random.default_rng(2)
    n = 600
    visits = rng.permutation(np.repeat([f"K{x:05d}" for x in rng.choice(10**5, n // 2, replace=False)], 2))
    visits3 = rng.permutation(np.repeat([f"{x:x}" for x in rng.choice(10**6, n // 3, replace=False)], 3))
    df = pd.DataFrame({
        "ref": visits,  # twice per patient, innocent name
        "ref3": visits3,  # three times per patient, hex codes
        "code": rng.choice(np.arange(10**8, 10**9), n, replace=False),  # unique 9-digit numbers
        "code_txt": [f"{x:09d}" for x in rng.choice(10**9, n, replace=False)],  # as text, leading zeros kept
        "y": ["0", "1"] * (n // 2),
    })
    found = {f.column: f for f in detect_identifiers(df, target="y")}
    assert {c: f.kind for c, f in found.items()} == {c: "record_number" for c in ("ref", "ref3", "code", "code_txt")}
    assert "repeated per patient" in found["ref"].reason and "(typically 2)" in found["ref"].reason
    assert "fixed 9-digit length" in found["code"].reason and found["code"].evidence.startswith("600 distinct in 600")


def test_clinical_values_are_not_codes() -> None:
    """High-resolution measurements, counts and categories with a rare tail are not identifiers."""
    rng = np.random.default_rng(3)
    n = 2000
    dx = rng.choice(["a", "b", "c", "d", "e", "f"], n).astype(object)
    dx[:30] = [f"rare {i}" for i in range(30)]
    df = pd.DataFrame({
        "platelets": rng.normal(250_000, 60_000, n).round(-3),  # 6 digits, rounded: repeats
        "cd4": rng.integers(0, 1500, n),  # 1-4 digits, mostly small cells (like ACTG175 cd80)
        "viral_load": np.exp(rng.normal(9, 2.5, n)).round(),  # long but not fixed-length
        "weight_g": rng.normal(3400, 500, n).round(),
        "diagnosis": dx,  # 30 singletons among common values: pooled, not dropped
        "y": ["0", "1"] * (n // 2),
    })
    assert detect_identifiers(df, target="y") == []
