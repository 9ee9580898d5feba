"""Great Expectations suite built from a Schema: the contract every modelled table (real input or
synthetic candidate) must meet before anything downstream trusts it. A failed expectation stops the
run with the expectation, the column and what was observed named in one line."""

import logging
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from synth_pipeline.errors import BadInput
from synth_pipeline.schema import ColumnSpec, Schema

MIN_ROWS = 20
_DTYPE = {"numeric": "float64", "integer": "float64", "categorical": "object"}


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    observed: str


@dataclass(frozen=True)
class ValidationReport:
    success: bool
    outcomes: tuple[ExpectationOutcome, ...]

    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def to_dict(self) -> dict:
        return {
            "success": self.success,
            "evaluated": len(self.outcomes),
            "failed": len(self.failures()),
            "outcomes": [asdict(o) for o in self.outcomes],
        }


def validate_table(df: pd.DataFrame, schema: Schema) -> ValidationReport:
    """Run the schema's suite on `df` (the conformed modelled table). An absent column gets only its
    existence check and a wrongly typed one no range/category check: those would only repeat the
    failure (or make GX error on comparing strings with numbers)."""
    gx = _import_gx()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("modelled")
        .add_dataframe_asset(schema.dataset or "table")
        .add_batch_definition_whole_dataframe("whole")
    )
    expectations = build_expectations(gx.expectations, schema, dtypes=_dtypes(df))
    # Handed over whole: add_expectation on a stored suite re-serialises it each time (quadratic).
    suite = context.suites.add(gx.ExpectationSuite(name=f"{schema.dataset}_schema", expectations=expectations))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="schema", data=batch, suite=suite))
    result = definition.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")
    order = {e.id: i for i, e in enumerate(suite.expectations)}
    results = sorted(result.results, key=lambda r: order[r.expectation_config.id])
    outcomes = tuple(_outcome(r, df, schema) for r in results)
    return ValidationReport(success=all(o.success for o in outcomes), outcomes=outcomes)


def require_valid(report: ValidationReport, source: str) -> None:
    """Raise BadInput naming the first failing expectation, its column and what was observed."""
    failures = report.failures()
    if not failures:
        return
    first = failures[0]
    where = f"column '{first.column}'" if first.column is not None else "the table"
    others = f"; {len(failures) - 1} other expectation(s) failed" if len(failures) > 1 else ""
    raise BadInput(f"{source}: {first.expectation} failed on {where} (observed {first.observed}){others}")


def build_expectations(gxe: Any, schema: Schema, dtypes: dict[str, str]) -> list[Any]:
    """Table row count, then per column: exists, dtype, range, categories, missing bound; the target
    additionally never null and with at least two classes (so the stratified split and AUROC work).
    `dtypes` (column -> dtype name of the frame to validate) decides which value checks can run."""
    out: list[Any] = [gxe.ExpectTableRowCountToBeBetween(min_value=MIN_ROWS)]
    for spec in schema.columns:
        out.append(gxe.ExpectColumnToExist(column=spec.name))
        if spec.name in dtypes:
            typed = dtypes[spec.name] == _DTYPE[spec.kind]
            out.extend(_column_expectations(gxe, spec, is_target=spec.name == schema.target, typed=typed))
    return out


def _column_expectations(gxe: Any, spec: ColumnSpec, is_target: bool, typed: bool) -> list[Any]:
    col = spec.name
    out: list[Any] = [gxe.ExpectColumnValuesToBeOfType(column=col, type_=_DTYPE[spec.kind])]
    if typed and spec.kind != "categorical" and (spec.min is not None or spec.max is not None):
        out.append(gxe.ExpectColumnValuesToBeBetween(column=col, min_value=spec.min, max_value=spec.max))
    if typed and spec.kind == "categorical" and spec.categories is not None:
        out.append(gxe.ExpectColumnValuesToBeInSet(column=col, value_set=list(spec.categories)))
    mostly = 1.0 if is_target else 1.0 - spec.max_missing
    out.append(gxe.ExpectColumnValuesToNotBeNull(column=col, mostly=mostly))
    if is_target:
        out.append(gxe.ExpectColumnUniqueValueCountToBeBetween(column=col, min_value=2))
    return out


def _outcome(r: Any, df: pd.DataFrame, schema: Schema) -> ExpectationOutcome:
    """GX result -> one readable observation. A GX error (not a failed check) is raised, not reported."""
    cfg = r.expectation_config
    column = cfg.kwargs.get("column")
    error = _gx_error(r.exception_info or {})
    if error is not None:
        raise RuntimeError(f"great_expectations error in {cfg.type} on column {column!r}: {error}")
    return ExpectationOutcome(cfg.type, column, bool(r.success), _observed(cfg.type, column, r.result, df, schema))


def _gx_error(info: dict) -> str | None:
    """GX catches metric errors into exception_info: flat, or keyed by metric id (one per metric)."""
    entries = [info, *(v for v in info.values() if isinstance(v, dict))]
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message"))
    return None


def _dtypes(df: pd.DataFrame) -> dict[str, str]:
    return {str(c): str(t) for c, t in df.dtypes.items()}


def _observed(kind: str, column: str | None, res: dict, df: pd.DataFrame, schema: Schema) -> str:
    if kind == "expect_table_row_count_to_be_between":
        return f"{res['observed_value']} rows"
    if kind == "expect_column_to_exist":
        return "present" if column in df.columns else "absent"
    if kind == "expect_column_values_to_be_of_type":
        return f"dtype {df[column].dtype}"
    if kind == "expect_column_unique_value_count_to_be_between":
        return f"{res.get('observed_value')} distinct values"
    unexpected = f"{res.get('unexpected_count', 0)} of {res.get('element_count', len(df))}"
    if kind == "expect_column_values_to_be_between":
        if not res.get("unexpected_count"):  # passing: the real extremes (one patient each) are not recorded
            return f"{unexpected} outside range"
        values = pd.to_numeric(df[column], errors="coerce")
        return f"min {_num(values.min())}, max {_num(values.max())}; {unexpected} outside range"
    if kind == "expect_column_values_to_be_in_set":
        examples = list(dict.fromkeys(map(str, res.get("partial_unexpected_list") or [])))[:3]
        return f"{unexpected} not allowed" + (f", e.g. {', '.join(examples)}" if examples else "")
    if kind == "expect_column_values_to_not_be_null":
        limit = 0.0 if column == schema.target else schema.column(column).max_missing
        return f"missing rate {res.get('unexpected_percent', 0.0) / 100:.3f} (max {limit:g})"
    return str(res.get("observed_value", res))


def _num(v: float) -> str:
    return f"{v:g}" if pd.notna(v) else "n/a"


def _import_gx() -> Any:
    """Imported on first use: GX takes seconds to import, and most CLI paths never validate."""
    import great_expectations as gx

    for name in ("great_expectations", "tzlocal"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return gx
