"""Readers, bundled schemas and inference, on the real bundled tables."""

from pathlib import Path

import pandas as pd
import pytest
from scipy.io import arff

from synth_pipeline.data import BUNDLED, LoadedTable, load_dataset
from synth_pipeline.errors import BadInput
from synth_pipeline.schema import conform


@pytest.fixture(scope="module")
def flchain() -> LoadedTable:
    return load_dataset("flchain")


@pytest.fixture(scope="module")
def actg175() -> LoadedTable:
    return load_dataset("actg175")


@pytest.mark.parametrize(
    ("name", "rows", "target", "positive"),
    [("flchain", 7874, "death", "dead"), ("ACTG175", 2139, "cens", "1"), ("GBSG2", 686, "cens", "1")],
)
def test_bundled_loads_with_declared_schema(name: str, rows: int, target: str, positive: str) -> None:
    t = load_dataset(name)
    assert len(t.raw) == rows
    assert t.schema == BUNDLED[name.lower()].schema
    assert (t.schema.target, t.schema.positive) == (target, positive)
    assert t.source.is_file()
    assert t.schema.source and t.schema.licence


def test_flchain_leaky_columns_removed(flchain: LoadedTable) -> None:
    assert {"futime", "chapter"} <= set(flchain.raw.columns)
    assert not {"futime", "chapter"} & set(flchain.schema.names)
    assert flchain.schema.drop == ("futime", "chapter")
    assert flchain.schema.column("age").kind == "integer"
    assert flchain.schema.column("sample.yr").kind == "categorical"


def test_actg175_identifiers_and_leaks_removed(actg175: LoadedTable) -> None:
    assert not {"Unnamed: 0", "pidnum", "days"} & set(actg175.schema.names)
    assert actg175.schema.identifiers == ("Unnamed: 0", "pidnum")
    assert {"cd496", "r"} <= set(actg175.schema.names)
    assert actg175.schema.column("arms").categories == ("0", "1", "2", "3")


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_declared_bounds_hold_on_source(name: str) -> None:
    t = load_dataset(name)
    df = conform(t.raw, t.schema)
    for c in t.schema.columns:
        s = df[c.name]
        assert s.isna().mean() <= c.max_missing, c.name
        if c.categories is not None:
            assert set(s.dropna()) <= set(c.categories), c.name
        if c.min is not None:
            assert c.min <= s.min() and s.max() <= c.max, c.name


def test_missing_rates_declared_above_observed(flchain: LoadedTable, actg175: LoadedTable) -> None:
    creat = flchain.raw["creatinine"].isna().mean()
    cd496 = actg175.raw["cd496"].isna().mean()
    assert 0.15 < creat < flchain.schema.column("creatinine").max_missing
    assert 0.35 < cd496 < actg175.schema.column("cd496").max_missing
    assert (actg175.raw["r"] == 0).equals(actg175.raw["cd496"].isna())


@pytest.mark.parametrize("name", ["flchain", "gbsg2"])
def test_declared_categories_match_arff_header(name: str) -> None:
    _, meta = arff.loadarff(BUNDLED[name].path())
    schema = BUNDLED[name].schema
    for c in schema.categorical:
        assert schema.column(c).categories == tuple(meta[c][1]), c


def test_csv_semicolon_round_trip(tmp_path: Path, actg175: LoadedTable) -> None:
    path = tmp_path / "actg.csv"
    actg175.raw.to_csv(path, sep=";", index=False)
    t = load_dataset(str(path), target="cens", id_columns=["Unnamed: 0", "pidnum"], drop=["days"])
    assert t.raw.shape == actg175.raw.shape
    assert t.schema.names == actg175.schema.names
    assert t.schema.dataset == "actg"
    assert t.schema.positive == "1"
    assert t.schema.column("hemo").categories == ("0", "1")
    assert t.schema.column("karnof").kind == "categorical"
    assert t.schema.column("wtkg").kind == "numeric"
    assert t.schema.column("cd496").kind == "integer"
    assert t.schema.column("cd496").min is None
    pd.testing.assert_frame_equal(conform(t.raw, t.schema), conform(actg175.raw, t.schema))


def test_parquet_round_trip(tmp_path: Path, flchain: LoadedTable) -> None:
    path = tmp_path / "flchain.parquet"
    flchain.raw.to_parquet(path)
    t = load_dataset(str(path), target="death", drop=["futime", "chapter"])
    assert t.schema.names == flchain.schema.names
    assert t.schema.column("age").kind == "integer"
    assert t.schema.column("kappa").kind == "numeric"
    assert t.schema.column("sex").categories == ("F", "M")
    assert t.schema.column("flc.grp").categories == tuple(str(i) for i in range(1, 11))
    assert t.schema.column("creatinine").max_missing >= flchain.raw["creatinine"].isna().mean()
    assert t.schema.positive == "dead"


def test_latin1_csv(tmp_path: Path, flchain: LoadedTable) -> None:
    df = flchain.raw.head(200).assign(sex=lambda d: d["sex"].map({"F": "Frau", "M": "Männlich"}))
    path = tmp_path / "latin.csv"
    path.write_bytes(df.to_csv(index=False).encode("latin-1"))
    t = load_dataset(str(path), target="death")
    assert t.schema.column("sex").categories == ("Frau", "Männlich")


def test_column_kinds_override(flchain: LoadedTable) -> None:
    t = load_dataset("flchain", column_kinds={"sample.yr": "integer", "age": "categorical"})
    assert t.schema.column("sample.yr").kind == "integer"
    assert t.schema.column("sample.yr").categories is None
    age = t.schema.column("age")
    assert (age.kind, age.min, age.max) == ("categorical", None, None)
    assert "50" in age.categories


def test_target_override_and_extra_drop() -> None:
    t = load_dataset("gbsg2", target="horTh", drop=["tsize"])
    assert t.schema.target == "horTh"
    assert "cens" in t.schema.features and "tsize" not in t.schema.names
    assert t.schema.drop == ("time", "tsize")
    assert t.schema.positive == "yes"


def _write(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"data": "flchian"}, "flchian: unknown dataset (bundled: actg175, flchain, gbsg2"),
        ({"data": "missing/table.csv", "target": "y"}, "table.csv: file not found"),
        ({"data": "flchain", "target": "outcome"}, "unknown target column 'outcome' (available: age"),
        ({"data": "flchain", "drop": ["death"]}, "target column 'death' is listed in drop"),
        ({"data": "actg175", "id_columns": ["cens"]}, "target column 'cens' is listed in id_columns"),
        ({"data": "flchain", "drop": ["nope"]}, "drop names unknown column 'nope'"),
        ({"data": "flchain", "id_columns": ["nope"]}, "id_columns names unknown column 'nope'"),
        ({"data": "flchain", "column_kinds": {"nope": "numeric"}}, "column_kinds names unknown column 'nope'"),
        ({"data": "flchain", "column_kinds": {"age": "float"}}, "unknown kind 'float' for column 'age'"),
        ({"data": "flchain", "column_kinds": {"sex": "numeric"}}, "column 'sex' cannot be numeric"),
        ({"data": "flchain", "column_kinds": {"death": "integer"}}, "target column 'death' must be categorical"),
    ],
)
def test_bad_options_raise_one_line(kwargs: dict, needle: str) -> None:
    with pytest.raises(BadInput) as e:
        load_dataset(**kwargs)
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("t.xlsx", b"a,b\n1,2\n", "unsupported file type '.xlsx'"),
        ("t.csv", b"", "table is empty"),
        ("t.csv", b"age;death\n", "table is empty"),
        ("t.parquet", b"not parquet at all", "cannot read Parquet"),
        ("t.csv", b"PK\x03\x04\x00\x00\x00binary", "not a text file"),
        ("t.arff", b"@relation x\n@attribute death {a,b}\n@data\nz\n", "cannot read ARFF (z value not in"),
        ("t.arff", b"@relation x\n@attribute death string\n@data\nq\n", "cannot read ARFF (String attributes"),
        ("t.arff", b"hello\n", "cannot read ARFF (no @relation"),
    ],
)
def test_bad_files_raise_naming_file(tmp_path: Path, name: str, content: bytes, needle: str) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(BadInput) as e:
        load_dataset(path, target="death")
    msg = str(e.value)
    assert name in msg and needle in msg and "\n" not in msg


def test_path_needs_target(tmp_path: Path, flchain: LoadedTable) -> None:
    path = tmp_path / "f.csv"
    flchain.raw.head(50).to_csv(path, index=False)
    with pytest.raises(BadInput, match="f.csv: a target column is required"):
        load_dataset(str(path))


def test_single_class_target(tmp_path: Path, flchain: LoadedTable) -> None:
    df = flchain.raw[flchain.raw["death"] == "dead"].head(100).copy()
    df.loc[df.index[:10], "death"] = None
    path = tmp_path / "dead_only.csv"
    df.to_csv(path, index=False)
    with pytest.raises(BadInput, match=r"dead_only.csv: target column 'death' has 1 class\(es\)"):
        load_dataset(str(path), target="death")


def test_category_strings_are_the_per_value_formatting_for_every_kind_of_column():
    """The vectorised path (one value type) gives exactly what formatting each value gives; a mixed
    column (True next to 1, "1" next to 1.0) keeps the per-value result."""
    import numpy as np

    from synth_pipeline.schema import _as_category_strings, _category_string

    cases = [pd.Series([1.0, 2.5, np.nan, -0.0, 3.0]), pd.Series([1, 2, 3]), pd.Series([True, False]),
             pd.Series(["a", None, "b", np.nan, "a"], index=[5, 6, 7, 8, 9], name="x"),
             pd.Series([None, None], dtype=object), pd.Series([True, 1, "x", 1.0]), pd.Series(["1", 1, 1.0])]
    for s in cases:
        per_value = s.map(lambda v: np.nan if pd.isna(v) else _category_string(v)).astype(object)
        got = _as_category_strings(s)
        assert got.index.equals(per_value.index) and got.name == per_value.name and got.dtype == object
        assert [(type(v), v) for v in got.fillna("<NA>")] == [(type(v), v) for v in per_value.fillna("<NA>")]
    assert _as_category_strings(pd.Series([True, 1])).tolist() == ["True", "1"]
