"""The GX schema suite: passes on the real bundled tables, names the expectation and column on
deliberately corrupted copies of them."""

import json
import time

import numpy as np
import pandas as pd
import pytest

from synth_pipeline.data import load_dataset
from synth_pipeline.errors import BadInput
from synth_pipeline.schema import Schema, conform
from synth_pipeline.validation import ValidationReport, require_valid, validate_table


def _modelled(name: str) -> tuple[pd.DataFrame, Schema]:
    t = load_dataset(name)
    return conform(t.raw, t.schema), t.schema


@pytest.fixture(scope="module")
def flchain() -> tuple[pd.DataFrame, Schema]:
    return _modelled("flchain")


@pytest.mark.parametrize("name", ["flchain", "actg175", "gbsg2"])
def test_bundled_tables_pass(name: str) -> None:
    df, schema = _modelled(name)
    report = validate_table(df, schema)
    assert report.success, report.failures()
    require_valid(report, name)
    checked = {(o.expectation, o.column) for o in report.outcomes}
    assert ("expect_table_row_count_to_be_between", None) in checked
    assert ("expect_column_unique_value_count_to_be_between", schema.target) in checked
    for c in schema.columns:
        assert ("expect_column_to_exist", c.name) in checked
        assert ("expect_column_values_to_not_be_null", c.name) in checked


def test_one_validation_is_fast(flchain: tuple[pd.DataFrame, Schema]) -> None:
    df, schema = flchain
    validate_table(df.head(50), schema)
    start = time.perf_counter()
    validate_table(df, schema)
    assert time.perf_counter() - start < 5.0


def _only_failure(report: ValidationReport) -> tuple[str, str | None, str]:
    assert not report.success
    [f] = report.failures()
    return f.expectation, f.column, f.observed


def test_out_of_range(flchain: tuple[pd.DataFrame, Schema]) -> None:
    df, schema = flchain
    bad = df.copy()
    bad.loc[3, "age"] = -3.0
    report = validate_table(bad, schema)
    assert _only_failure(report)[:2] == ("expect_column_values_to_be_between", "age")
    with pytest.raises(BadInput) as e:
        require_valid(report, "flchain")
    assert str(e.value).startswith(
        "flchain: expect_column_values_to_be_between failed on column 'age' (observed min -3"
    )


def test_unknown_category(flchain: tuple[pd.DataFrame, Schema]) -> None:
    df, schema = flchain
    bad = df.copy()
    bad.loc[10, "sex"] = "X"
    expectation, column, observed = _only_failure(validate_table(bad, schema))
    assert (expectation, column) == ("expect_column_values_to_be_in_set", "sex")
    assert "X" in observed


def test_too_many_missing(flchain: tuple[pd.DataFrame, Schema]) -> None:
    df, schema = flchain
    bad = df.copy()
    bad.loc[: len(bad) // 2, "creatinine"] = np.nan
    expectation, column, observed = _only_failure(validate_table(bad, schema))
    assert (expectation, column) == ("expect_column_values_to_not_be_null", "creatinine")
    assert "max 0.25" in observed


def test_several_failures_reported_and_counted(flchain: tuple[pd.DataFrame, Schema]) -> None:
    df, schema = flchain
    bad = df.drop(columns=["mgus"]).assign(kappa=-1.0)
    bad.loc[0, "death"] = np.nan
    report = validate_table(bad, schema)
    failed = {(f.expectation, f.column) for f in report.failures()}
    assert failed == {
        ("expect_column_to_exist", "mgus"),
        ("expect_column_values_to_be_between", "kappa"),
        ("expect_column_values_to_not_be_null", "death"),
    }
    with pytest.raises(BadInput, match="kappa.*; 2 other expectation"):
        require_valid(report, "flchain")
    assert json.loads(json.dumps(report.to_dict()))["failed"] == 3


def test_single_class_target_and_wrong_dtype() -> None:
    df, schema = _modelled("gbsg2")
    bad = df[df["cens"] == "1"].assign(age=lambda d: d["age"].astype(str))
    failures = validate_table(bad, schema).failures()
    assert [(f.expectation, f.column, f.observed) for f in failures] == [
        ("expect_column_values_to_be_of_type", "age", "dtype object"),
        ("expect_column_unique_value_count_to_be_between", "cens", "1 distinct values"),
    ]


def test_too_few_rows_names_the_table() -> None:
    df, schema = _modelled("gbsg2")
    report = validate_table(df.head(19), schema)
    assert _only_failure(report)[:2] == ("expect_table_row_count_to_be_between", None)
    with pytest.raises(BadInput, match=r"gbsg2: expect_table_row_count_to_be_between failed on the table \(observed 19 rows\)"):
        require_valid(report, "gbsg2")


def test_gx_errors_propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GX metric error is a bug to see, not a failed expectation: here the range check is forced
    onto a text column, which GX cannot compare."""
    import synth_pipeline.validation as validation

    df, schema = _modelled("gbsg2")
    bad = df.assign(age=df["age"].astype(str))
    claimed = {c: "float64" if c == "age" else str(t) for c, t in bad.dtypes.items()}
    monkeypatch.setattr(validation, "_dtypes", lambda frame: claimed)
    with pytest.raises(RuntimeError, match="error in expect_column_values_to_be_between on column 'age'"):
        validate_table(bad, schema)
