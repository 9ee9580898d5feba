"""Typed table schema shared by every stage, and the one function that casts a frame to it."""

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

Kind = Literal["numeric", "integer", "categorical"]


@dataclass(frozen=True)
class ColumnSpec:
    """One modelled column. Bounds and categories feed the validation suite (never used to clip)."""

    name: str
    kind: Kind
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    max_missing: float = 0.5


@dataclass(frozen=True)
class Schema:
    """What the pipeline models: `columns` (target included, in order) after `drop` and `identifiers`
    are removed. `positive` is the target class scored by AUROC (binary targets). `sensitive` names
    the columns (besides the target) an attacker would want to infer: each gets an inference attack."""

    dataset: str
    target: str
    columns: tuple[ColumnSpec, ...]
    drop: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()
    positive: str | None = None
    sensitive: tuple[str, ...] = ()
    source: str = ""
    licence: str = ""
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def numeric(self) -> list[str]:
        return [c.name for c in self.columns if c.kind != "categorical"]

    @property
    def categorical(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == "categorical"]

    @property
    def features(self) -> list[str]:
        return [c.name for c in self.columns if c.name != self.target]

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Schema":
        cols = tuple(
            ColumnSpec(**{**c, "categories": tuple(c["categories"]) if c.get("categories") else None})
            for c in d["columns"]
        )
        return cls(
            **{
                **d,
                "columns": cols,
                "drop": tuple(d.get("drop", ())),
                "identifiers": tuple(d.get("identifiers", ())),
                "sensitive": tuple(d.get("sensitive", ())),
                "notes": dict(d.get("notes", {})),
            }
        )


def _category_string(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _as_category_strings(s: pd.Series) -> pd.Series:
    """Categorical values as plain strings ("1", not "1.0"), missing kept as NaN. A column of one
    value type (numbers, booleans or text) is formatted once per distinct value (linear in rows,
    not a Python call per row); a mixed one (True next to 1, Decimal) value by value, where equal
    values of different types may print differently."""
    one_type = s.dtype.kind in "biuf" or (s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in
                                           ("string", "empty"))
    if not one_type:
        return s.map(lambda v: np.nan if pd.isna(v) else _category_string(v)).astype(object)
    codes, uniques = pd.factorize(s)  # missing -> -1, the last label
    labels = np.array([*(_category_string(v) for v in uniques), np.nan], dtype=object)
    return pd.Series(labels[codes], index=s.index, name=s.name, dtype=object)


def conform(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Select the schema's columns in order; numeric -> float64 (integers rounded), categorical ->
    object strings with NaN for missing. Every generator output passes through this, so releases
    have one stable dtype layout (and byte-identical Parquet for identical values)."""
    missing = [c for c in schema.names if c not in df.columns]
    if missing:
        raise KeyError(f"columns missing from frame: {missing}")
    out = {}
    for c in schema.columns:
        s = df[c.name]
        if c.kind == "categorical":
            out[c.name] = _as_category_strings(s)
        else:
            v = pd.to_numeric(s, errors="coerce").astype("float64")
            out[c.name] = v.round() if c.kind == "integer" else v
    return pd.DataFrame(out).reset_index(drop=True)
