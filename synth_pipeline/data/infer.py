"""Schema inference for user files, and the column-kind overrides shared with bundled schemas."""

import math
from collections.abc import Mapping
from dataclasses import replace

import pandas as pd

from synth_pipeline.errors import BadInput
from synth_pipeline.schema import ColumnSpec, Kind, Schema, conform

KINDS: tuple[Kind, ...] = ("numeric", "integer", "categorical")
MAX_CATEGORICAL_LEVELS = 10
DEFAULT_MAX_MISSING = 0.5
INFERRED_NOTE = "inferred from the file"  # schema.notes["schema"] of a file's schema: its category lists are observed
_POSITIVE_LABELS = ("1", "true", "yes", "y", "positive", "dead", "event")


def category_strings(s: pd.Series) -> list[str]:
    """Distinct non-missing values exactly as conform() will write them ("1", not "1.0"), sorted."""
    values = conform(s.to_frame(), _probe(s)).iloc[:, 0].dropna().unique()
    return sorted(values, key=_natural_key)


def _natural_key(v: str) -> tuple[int, float, str]:
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def infer_kind(s: pd.Series) -> Kind:
    """Few-valued or non-numeric -> categorical (codes, flags); whole numbers -> integer; else numeric."""
    if s.dtype == bool or not pd.api.types.is_numeric_dtype(s):
        return "categorical"
    values = s.dropna()
    if values.nunique() <= MAX_CATEGORICAL_LEVELS:
        return "categorical"
    return "integer" if (values == values.round()).all() else "numeric"


def infer_spec(s: pd.Series, kind: Kind | None = None) -> ColumnSpec:
    """No declared ranges (we only know what was observed); categories are the observed levels. The
    missing bound tolerates the observed rate so the source table passes its own inferred schema."""
    kind = kind or infer_kind(s)
    missing = float(s.isna().mean()) if len(s) else 0.0
    # rounded up with a margin: GX compares the rate as a float, and 1 - 0.8875 is not 0.1125
    tolerated = min(1.0, math.ceil(missing * 1000) / 1000 + 0.001)
    categories = tuple(category_strings(s)) if kind == "categorical" else None
    return ColumnSpec(str(s.name), kind, categories=categories, max_missing=max(DEFAULT_MAX_MISSING, tolerated))


def check_kinds(column_kinds: Mapping[str, str], available: list[str], where: str) -> None:
    for col, kind in column_kinds.items():
        if col not in available:
            raise BadInput(f"{where}: column_kinds names unknown column '{col}' (available: {', '.join(available)})")
        if kind not in KINDS:
            raise BadInput(f"{where}: unknown kind '{kind}' for column '{col}' (expected one of {', '.join(KINDS)})")


def override_kind(spec: ColumnSpec, s: pd.Series, kind: Kind, where: str) -> ColumnSpec:
    """Re-type one column. Declared ranges only survive between numeric kinds; categories become the
    observed levels. A numeric kind on text that does not parse is refused rather than nulled."""
    if kind == spec.kind:
        return spec
    if kind == "categorical":
        return replace(spec, kind=kind, min=None, max=None, categories=tuple(category_strings(s)))
    parsed = pd.to_numeric(s, errors="coerce")
    bad = s.notna() & parsed.isna()
    if bad.any():
        raise BadInput(f"{where}: column '{spec.name}' cannot be {kind} (value {s[bad].iloc[0]!r} is not a number)")
    return replace(spec, kind=kind, categories=None)


def choose_positive(target: pd.Series) -> str | None:
    """For a binary target: a conventional event label if present, else the minority class."""
    counts = conform(target.to_frame(), _probe(target)).iloc[:, 0].value_counts()
    if len(counts) != 2:
        return None
    for label in counts.index:
        if str(label).lower() in _POSITIVE_LABELS:
            return str(label)
    return str(counts.sort_index().idxmin())


def _probe(s: pd.Series) -> Schema:
    return Schema(dataset="_", target=str(s.name), columns=(ColumnSpec(str(s.name), "categorical"),))
