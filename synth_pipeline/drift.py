"""What changed since the previous release of the same dataset: input drift, schema, rows, gate metrics.

No real row may be stored in a release, so a release cannot keep its input for tomorrow's comparison.
Instead each manifest records an `input_profile` of the modelled real table (train + holdout) under
the small-cell rule of synth_pipeline.plots (the same binning the report's histograms use): numeric
columns as round-number bins each holding 0 or >= 5 real rows, categorical columns as counts of the
categories held by >= 5 rows plus one pooled "other" count (dropped when it holds 1-4 rows).

The next release bins its own real rows on the previous release's recorded bins and tests:
- numeric: two-sample Kolmogorov-Smirnov (scipy.stats.ks_2samp, asymptotic p-value) on the binned
  values. D is then the largest gap between the two CDFs at the recorded bin edges: a lower bound on
  the raw-data D, so a flag is never an artefact of the binning. New values outside the recorded
  range count in the outermost bins.
- categorical: chi-square test of homogeneity (scipy.stats.chi2_contingency, no continuity
  correction) on the 2 x C table of recorded vs new counts, over the recorded categories (and the
  pooled "other" when it was recorded); effect size Cramer's V = sqrt(chi2 / n).
A column is flagged when p < P_MAX and the effect size (D or V) is at least EFFECT_MIN: with
thousands of rows a p-value alone flags differences too small to matter.
"""

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from synth_pipeline.plots import OTHER_LABEL, column_distributions
from synth_pipeline.schema import Schema

P_MAX = 0.01
EFFECT_MIN = 0.1


@dataclass(frozen=True)
class ColumnDrift:
    """One column's input drift: `test` "ks" (effect = KS D) or "chi2" (effect = Cramer's V);
    statistic / p_value / effect None with a `note` when no test was possible."""

    column: str
    kind: str
    test: str | None
    statistic: float | None
    p_value: float | None
    effect: float | None
    flagged: bool
    n_previous: int
    n_current: int
    note: str = ""


@dataclass(frozen=True)
class Change:
    """One value before and after (a row count, a gate verdict or a gate metric)."""

    what: str
    previous: Any
    current: Any

    @property
    def changed(self) -> bool:
        return self.previous != self.current


@dataclass(frozen=True)
class SincePrevious:
    """This release against the previous published release of the same dataset in the same store."""

    previous_release_id: str
    previous_created_at: str | None
    same_input: bool
    columns_added: tuple[str, ...]
    columns_removed: tuple[str, ...]
    kinds_changed: tuple[Change, ...]
    rows: tuple[Change, ...]
    drift: tuple[ColumnDrift, ...]
    gates: tuple[Change, ...]
    metrics: tuple[Change, ...]
    p_max: float = P_MAX
    effect_min: float = EFFECT_MIN

    @property
    def flagged(self) -> tuple[str, ...]:
        return tuple(d.column for d in self.drift if d.flagged)

    def summary(self) -> str:
        """One line for logs and Dagster metadata."""
        schema = [f"+{c}" for c in self.columns_added] + [f"-{c}" for c in self.columns_removed]
        schema += [f"{k.what}: {k.previous}->{k.current}" for k in self.kinds_changed]
        gates = [f"{g.what}: {g.previous}->{g.current}" for g in self.gates if g.changed]
        return (f"since {self.previous_release_id}: drift in {', '.join(self.flagged) or 'no column'}; "
                f"schema {', '.join(schema) or 'unchanged'}; gates {', '.join(gates) or 'unchanged'}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["flagged"] = list(self.flagged)
        d["summary"] = self.summary()
        return d


def input_profile(table: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """Per-column summary of the real modelled table under the small-cell rule (module doc)."""
    agg = column_distributions(table, table.iloc[:0], schema)
    cols = {}
    for c in agg["columns"]:
        base = {"kind": c["kind"], "n": c["n_real"], "missing": c["missing_real"]}
        if c["kind"] == "categorical":
            rows = [r for r in c["categories"] if not r["suppressed"] and (r["real"] or r["category"] != OTHER_LABEL)]
            cols[c["name"]] = {**base, "categories": {r["category"]: r["real"] for r in rows}}
        else:
            bins = [] if c.get("suppressed") else [b for b in c["bins"] if not b["suppressed"]]
            cols[c["name"]] = {**base, "bins": [{"lo": b["lo"], "hi": b["hi"], "n": b["real"]} for b in bins]}
    return {"rows": len(table), "min_cell_count": agg["min_cell_count"], "columns": cols}


def previous_release(dataset_dir: Path, *, exclude: str | None = None) -> dict[str, Any] | None:
    """The manifest of the most recent published, complete release folder in `dataset_dir` (by
    `created_at`, then name), other than `exclude`; None when there is none. A folder being written
    (`.tmp-*`), the refusals folder, an unreadable or unpublished manifest, or one whose listed files
    are not all present, never counts."""
    found = []
    for d in Path(dataset_dir).iterdir() if Path(dataset_dir).is_dir() else ():
        if d.name.startswith(".") or d.name == "refusals" or d.name == exclude or not d.is_dir():
            continue
        try:
            m = json.loads((d / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(m, dict) or m.get("verdict") != "published" or m.get("release_id") != d.name:
            continue
        if not all((d / f).is_file() for f in m.get("files") or {}):
            continue
        found.append((str(m.get("created_at") or ""), d.name, m))
    return max(found, key=lambda t: t[:2])[2] if found else None


def _f(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _numeric_drift(name: str, kind: str, prev: Mapping[str, Any], values: pd.Series) -> ColumnDrift:
    bins = prev.get("bins") or []
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    counts_prev = np.array([b["n"] for b in bins], dtype=int)
    if len(bins) < 2 or counts_prev.sum() == 0 or len(v) == 0:
        return ColumnDrift(name, kind, None, None, None, None, False, int(counts_prev.sum()), len(v),
                           "no test: too few recorded bins or rows")
    inner = np.array([b["hi"] for b in bins[:-1]], dtype=float)
    counts_new = np.bincount(np.searchsorted(inner, v, side="right"), minlength=len(bins))
    idx = np.arange(len(bins))
    res = stats.ks_2samp(np.repeat(idx, counts_prev), np.repeat(idx, counts_new), method="asymp")
    d, p = float(res.statistic), float(res.pvalue)
    return ColumnDrift(name, kind, "ks", d, p, d, p < P_MAX and d >= EFFECT_MIN, int(counts_prev.sum()), len(v))


def _categorical_drift(name: str, prev: Mapping[str, Any], values: pd.Series) -> ColumnDrift:
    recorded = dict(prev.get("categories") or {})
    named = [c for c in recorded if c != OTHER_LABEL]
    new = values.dropna().astype(str)
    counts_new = [int((new == c).sum()) for c in named]
    counts_prev = [int(recorded[c]) for c in named]
    if OTHER_LABEL in recorded:
        counts_new.append(int((~new.isin(named)).sum()))
        counts_prev.append(int(recorded[OTHER_LABEL]))
    table = np.array([counts_prev, counts_new])
    table = table[:, table.sum(axis=0) > 0]
    n_prev, n_new = int(table[0].sum()), int(table[1].sum())
    if table.shape[1] < 2 or n_prev == 0 or n_new == 0:
        return ColumnDrift(name, "categorical", None, None, None, None, False, n_prev, n_new,
                           "no test: fewer than two recorded categories with rows")
    res = stats.chi2_contingency(table, correction=False)
    chi2, p = float(res.statistic), float(res.pvalue)
    v = math.sqrt(chi2 / float(table.sum()))
    return ColumnDrift(name, "categorical", "chi2", chi2, p, v, p < P_MAX and v >= EFFECT_MIN, n_prev, n_new)


def input_drift(profile: Mapping[str, Any], table: pd.DataFrame, schema: Schema) -> tuple[ColumnDrift, ...]:
    """Test each column present in both the recorded `profile` and `table`, with the same kind family."""
    out = []
    recorded = profile.get("columns") or {}
    for c in schema.columns:
        prev = recorded.get(c.name)
        if not isinstance(prev, Mapping) or c.name not in table.columns:
            continue
        if (prev.get("kind") == "categorical") != (c.kind == "categorical"):
            out.append(ColumnDrift(c.name, c.kind, None, None, None, None, False, int(prev.get("n") or 0),
                                   int(table[c.name].notna().sum()), f"no test: kind changed from {prev.get('kind')}"))
        elif c.kind == "categorical":
            out.append(_categorical_drift(c.name, prev, table[c.name]))
        else:
            out.append(_numeric_drift(c.name, c.kind, prev, table[c.name]))
    return tuple(out)


def _gate_values(gates: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    verdicts, values = {}, {}
    for g in gates or ():
        verdicts[str(g.get("gate"))] = "pass" if g.get("passed") else "refuse"
        for m in g.get("metrics") or ():
            values[f"{g.get('gate')}: {m.get('name')}"] = _f(m.get("value"))
    return verdicts, values


def _changes(prev: Mapping[str, Any], cur: Mapping[str, Any]) -> tuple[Change, ...]:
    return tuple(Change(k, prev.get(k), cur.get(k)) for k in dict.fromkeys([*prev, *cur]))


def compare(previous: Mapping[str, Any], current: Mapping[str, Any], table: pd.DataFrame, schema: Schema) -> SincePrevious:
    """This release's manifest (`current`, before publishing) and real modelled `table` against the
    `previous` release's manifest."""
    old_cols = {c["name"]: c["kind"] for c in (previous.get("schema") or {}).get("columns", [])}
    new_cols = {c.name: c.kind for c in schema.columns}
    pin, cin = previous.get("input") or {}, current.get("input") or {}
    keys = ("rows", "train_rows", "holdout_rows")
    rows = (*(Change(f"input {k}", pin.get(k), cin.get(k)) for k in keys),
            Change("synthetic rows", previous.get("n_rows"), current.get("n_rows")))
    old_verdicts, old_values = _gate_values(previous.get("gates") or [])
    new_verdicts, new_values = _gate_values(current.get("gates") or [])
    profile = previous.get("input_profile") if isinstance(previous.get("input_profile"), Mapping) else None
    return SincePrevious(
        previous_release_id=str(previous.get("release_id")),
        previous_created_at=previous.get("created_at"),
        same_input=bool(pin.get("sha256")) and pin.get("sha256") == cin.get("sha256"),
        columns_added=tuple(c for c in new_cols if c not in old_cols),
        columns_removed=tuple(c for c in old_cols if c not in new_cols),
        kinds_changed=tuple(Change(c, old_cols[c], k) for c, k in new_cols.items() if c in old_cols and old_cols[c] != k),
        rows=rows,
        drift=input_drift(profile, table, schema) if profile else (),
        gates=_changes(old_verdicts, new_verdicts),
        metrics=_changes(old_values, new_values),
    )


def since_previous(dataset_dir: Path, current: Mapping[str, Any], table: pd.DataFrame, schema: Schema,
                   *, release_id: str) -> SincePrevious | None:
    """The comparison with the previous release in `dataset_dir`, or None for a dataset's first release."""
    previous = previous_release(dataset_dir, exclude=release_id)
    return compare(previous, current, table, schema) if previous else None
