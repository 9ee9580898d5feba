"""The small-cell rule on categories: a category value held by fewer than k patients is pooled before
anything is trained on it (or the run refuses, by configuration), so it can reach no model, no
synthetic row, no manifest category list and no plot.

Pooled values become one value, RARE_LABEL. When the pool itself is held by fewer than k patients it
would single them out as a group, so it is merged into the column's most frequent category instead:
that keeps every patient and every other category, and shifts the largest category by fewer than k
rows (the smallest change available; dropping the rows would remove exactly the unusual patients and
bend the cohort). Patients are counted as rows, or as distinct values of a patient code when the
table has one (an identifier column repeated per patient), whichever is fewer.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from synth_pipeline.errors import BadInput
from synth_pipeline.schema import ColumnSpec, Schema, conform

RARE_LABEL = "__rare__"
ON_RARE_CATEGORIES = ("pool", "refuse")
KEY_COVERAGE = 0.95  # an identifier column counts patients only if this share of rows holds a real value


@dataclass(frozen=True)
class Pooled:
    """One column's pooling: how many values and rows, never which values."""

    column: str
    values: int
    rows: int
    into: str  # RARE_LABEL, "most_frequent" (the pool was itself rare) or "missing" (nothing common left)

    def note(self, k: int) -> str:
        where = {RARE_LABEL: f"into one value '{RARE_LABEL}'",
                 "most_frequent": f"into the most frequent category (together they are held by fewer than {k})",
                 "missing": "to missing (no category is held by enough patients)"}[self.into]
        return (f"pooled: {self.values} value(s) held by fewer than {k} patients each ({self.rows} rows), "
                f"{where}; their values are not recorded")


def category_values(s: pd.Series) -> pd.Series:
    """Each row's value as the category string conform() writes ("1", not "1.0"); missing stays NaN."""
    probe = Schema(dataset="_", target=str(s.name), columns=(ColumnSpec(str(s.name), "categorical"),))
    return conform(s.to_frame(), probe).iloc[:, 0].set_axis(s.index)


def patient_key(raw: pd.DataFrame, id_columns: Sequence[str]) -> list[pd.Series]:
    """Identifier columns that can count patients: nearly every row holds a real value (not missing,
    not a placeholder such as 'unknown')."""
    from synth_pipeline.identifiers import PLACEHOLDERS

    keys = []
    for c in id_columns:
        if c not in raw.columns:
            continue
        s = raw[c].astype(str).str.strip()
        real = raw[c].notna() & ~s.str.lower().isin(PLACEHOLDERS)
        if len(s) and real.mean() >= KEY_COVERAGE:
            keys.append(s.where(real))
    return keys


def holders(values: pd.Series, keys: Sequence[pd.Series] = ()) -> pd.Series:
    """Patients per category value: its rows, or fewer distinct patient codes when a key says so."""
    counts = values.value_counts()
    for key in keys:
        frame = pd.DataFrame({"v": values, "k": key.reindex(values.index)}).dropna()
        counts = np.minimum(counts, frame.groupby("v")["k"].nunique().reindex(counts.index, fill_value=0))
    return counts


def check_target(s: pd.Series, where: str, k: int, keys: Sequence[pd.Series] = ()) -> None:
    """A target class held by fewer than k patients would be in every synthetic table: refuse, naming
    the column and the counts, never the class."""
    counts = holders(category_values(s).dropna(), keys)
    rare = counts[counts < k]
    if len(rare):
        raise BadInput(
            f"{where}: target column '{s.name}' has {len(rare)} class(es) held by fewer than {k} patients "
            f"({int(rare.sum())} patients in all); merge them into another class or remove those rows (small_cell_k={k})"
        )


def pool_rare_categories(
    raw: pd.DataFrame, modelled: pd.Index, specs: Sequence[ColumnSpec], *, target: str, k: int, on_rare: str,
    where: str, declared: Schema | None, keys: Sequence[pd.Series] = (),
) -> tuple[pd.DataFrame, tuple[ColumnSpec, ...], tuple[Pooled, ...]]:
    """Pool, in every categorical column but the target, the values held by fewer than k patients among
    the modelled rows (index `modelled`); refuse naming the columns when on_rare == "refuse". A declared
    schema's values outside its categories are left for validation to refuse. Returns the table, the
    specs with their category lists updated, and what was pooled."""
    if on_rare not in ON_RARE_CATEGORIES:
        raise BadInput(f"config: on_rare_categories {on_rare!r} must be one of {', '.join(ON_RARE_CATEGORIES)}")
    out, new_specs, pooled = raw, [], []
    for spec in specs:
        if spec.kind != "categorical" or spec.name == target:
            new_specs.append(spec)
            continue
        values = category_values(raw[spec.name])
        counts = holders(values.loc[modelled].dropna(), keys)
        rare = counts[counts < k]
        if declared is not None and spec.categories is not None:
            rare = rare[rare.index.isin(spec.categories)]
        if rare.empty:
            new_specs.append(spec)
            continue
        mask = values.isin(rare.index)
        pooled.append(_pooled(spec.name, rare, counts, int(mask.loc[modelled].sum()), k, keys, values.loc[modelled]))
        if on_rare == "refuse":
            continue
        out = out.copy() if out is raw else out
        new_specs.append(_apply(out, spec, values, mask, pooled[-1], counts, declared is not None))
    if on_rare == "refuse" and pooled:
        listed = ", ".join(f"'{p.column}' ({p.values} values, {p.rows} rows)" for p in pooled)
        raise BadInput(f"{where}: categories held by fewer than {k} patients in {listed}; merge or drop them, or "
                       "set on_rare_categories='pool'")
    return out, tuple(new_specs), tuple(pooled)


def _pooled(column: str, rare: pd.Series, counts: pd.Series, rows: int, k: int, keys: Sequence[pd.Series],
            values: pd.Series) -> Pooled:
    """Where the rare values go: one pooled value if the pool is held by k patients, else the most
    frequent category, else (nothing common left) missing."""
    pool = values[values.isin(rare.index)].map(lambda _: RARE_LABEL)
    if len(pool) and int(holders(pool, keys).sum()) >= k:
        into = RARE_LABEL
    else:
        into = "most_frequent" if len(rare) < len(counts) else "missing"
    return Pooled(column, len(rare), rows, into)


def _apply(out: pd.DataFrame, spec: ColumnSpec, values: pd.Series, mask: pd.Series, p: Pooled, counts: pd.Series,
           declared: bool) -> ColumnSpec:
    """Rewrite the column in `out` (in place) as its category strings (a number column stays one type
    once the pool's label joins it) with the rare values replaced; return the spec with the categories
    that remain."""
    column = values.astype(object)
    if p.into == "most_frequent":
        column[mask] = counts.drop(index=sorted(set(values[mask]) & set(counts.index))).idxmax()
    else:
        column[mask] = RARE_LABEL if p.into == RARE_LABEL else np.nan
    out[spec.name] = column
    gone = set(values[mask])
    kept = [c for c in (spec.categories or ()) if c not in gone]
    if p.into == RARE_LABEL:
        kept.append(RARE_LABEL)
    missing = float(out[spec.name].isna().mean()) if len(out) else 0.0
    max_missing = max(spec.max_missing, min(1.0, math.ceil(missing * 1000) / 1000 + 0.001)) if p.into == "missing" \
        else spec.max_missing
    return replace(spec, categories=tuple(kept) if (kept or declared) else None, max_missing=max_missing)


def notes(pooled: Sequence[Pooled], k: int) -> Mapping[str, str]:
    return {f"pooled:{p.column}": p.note(k) for p in pooled}
