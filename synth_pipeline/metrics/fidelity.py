"""Fidelity: does the synthetic table look like the real one, column by column and pair by pair?

Scores are SDMetrics' (the same ones SDV's quality report averages), all in [0, 1], 1 = identical:
KSComplement / TVComplement per column, CorrelationSimilarity for numeric pairs and
ContingencySimilarity (numerics binned into 10 real-data bins) for the other pairs,
MissingValueSimilarity (1 - |difference in missing rate|) per column. Details list the worst first,
because those are what a reviewer reads.
"""

import itertools
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
from sdmetrics.errors import ConstantInputError, IncomputableMetricError
from sdmetrics.single_column import KSComplement, MissingValueSimilarity, TVComplement

from synth_pipeline.metrics.base import MetricResult, missing
from synth_pipeline.schema import Schema

COMPARED = "synthetic vs real"
NAMES = ("column_shapes", "column_pair_trends", "missing_rates")
MAX_PAIRS = 100
MAX_PAIR_ROWS = 20000
_INCOMPUTABLE = (ValueError, ConstantInputError, IncomputableMetricError)


def _summarise(name: str, scored: list[dict], skipped: list[dict], extra: dict | None = None) -> MetricResult:
    """Mean of the per-item scores; items SDMetrics cannot score (constant or empty columns) are
    listed under `skipped`, not averaged in as zeros or ones."""
    if not scored:
        why = "; ".join(f"{s['item']}: {s['reason']}" for s in skipped) or "nothing to compare"
        return missing(name, f"no item could be scored ({why})", COMPARED)
    scored = sorted(scored, key=lambda d: d["score"])
    return MetricResult(
        name=name,
        value=float(np.mean([d["score"] for d in scored])),
        compared=COMPARED,
        detail={"items": scored, "skipped": skipped, "worst": scored[0]["item"], **(extra or {})},
    )


def _score(item: str, metric: str, compute: Callable[[], dict], skipped: list[dict], **fields) -> dict | None:
    """One SDMetrics breakdown as a detail row ({"score", and e.g. "real"/"synthetic"}), or None with
    the reason appended to `skipped`."""
    try:
        breakdown = {k: float(v) for k, v in compute().items()}
    except _INCOMPUTABLE as e:
        skipped.append({"item": item, "reason": f"{metric}: {e}"})
        return None
    if not np.isfinite(breakdown["score"]):
        skipped.append({"item": item, "reason": f"{metric}: undefined (no observed values)"})
        return None
    return {"item": item, "metric": metric, **fields, **{k: v for k, v in breakdown.items() if np.isfinite(v)}}


def _collect(rows) -> tuple[list[dict], list[dict]]:
    scored, skipped = [], []
    for item, metric, compute, fields in rows:
        r = _score(item, metric, compute, skipped, **fields)
        if r:
            scored.append(r)
    return scored, skipped


def column_shapes(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> MetricResult:
    """KSComplement (numeric) / TVComplement (categorical) on the observed values of each column."""
    def shape(c: str, metric) -> dict:
        r, s = real[c].dropna(), synthetic[c].dropna()
        if r.empty or s.empty:
            raise IncomputableMetricError(f"no observed values in the {'real' if r.empty else 'synthetic'} column")
        return {"score": metric.compute(r, s)}

    def row(c: str):
        metric = TVComplement if c in schema.categorical else KSComplement
        return c, metric.__name__, lambda: shape(c, metric), {}

    return _summarise("column_shapes", *_collect(row(c) for c in schema.names))


def missing_rates(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> MetricResult:
    """1 - |real missing rate - synthetic missing rate| per column; real and synthetic rates in the detail."""
    rows = ((c, "MissingValueSimilarity", lambda c=c: MissingValueSimilarity.compute_breakdown(real[c], synthetic[c]), {})
            for c in schema.names)
    return _summarise("missing_rates", *_collect(rows))


def column_pair_trends(
    real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *, seed: int,
    max_pairs: int = MAX_PAIRS, max_rows: int = MAX_PAIR_ROWS,
) -> MetricResult:
    """Pearson-correlation similarity for numeric pairs, contingency similarity otherwise. At most
    `max_pairs` pairs (a seeded sample) on at most `max_rows` seeded rows per table, which keeps it
    to seconds on wide tables; the detail says how many of each were used."""
    rng = np.random.default_rng(seed)
    all_pairs = list(itertools.combinations(schema.names, 2))
    pairs = all_pairs
    if len(pairs) > max_pairs:
        pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), size=max_pairs, replace=False))]
    real = real.iloc[np.sort(rng.choice(len(real), size=min(max_rows, len(real)), replace=False))]
    synthetic = synthetic.iloc[np.sort(rng.choice(len(synthetic), size=min(max_rows, len(synthetic)), replace=False))]
    numeric = set(schema.numeric)

    def row(a: str, b: str):
        cols = [a, b]
        if a in numeric and b in numeric:
            return (f"{a} × {b}", "CorrelationSimilarity",
                    lambda: CorrelationSimilarity.compute_breakdown(real[cols], synthetic[cols]), {"columns": cols})
        continuous = [c for c in cols if c in numeric] or None
        return (f"{a} × {b}", "ContingencySimilarity",
                lambda: ContingencySimilarity.compute_breakdown(real[cols], synthetic[cols],
                                                                continuous_column_names=continuous),
                {"columns": cols})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.SettingWithCopyWarning)  # SDMetrics bins a column slice
        scored, skipped = _collect(row(a, b) for a, b in pairs)
    extra = {"n_pairs_total": len(all_pairs), "n_pairs_scored": len(scored),
             "n_rows_real": len(real), "n_rows_synthetic": len(synthetic), "seed": seed}
    return _summarise("column_pair_trends", scored, skipped, extra)


def fidelity_metrics(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *, seed: int) -> list[MetricResult]:
    """column_shapes, column_pair_trends and missing_rates, in that order."""
    problem = next(
        (f"{label} table lacks column(s) {absent}" for label, df in (("real", real), ("synthetic", synthetic))
         if (absent := [c for c in schema.names if c not in df.columns])),
        None,
    )
    problem = problem or next((f"{label} table is empty" for label, df in (("real", real), ("synthetic", synthetic))
                               if len(df) == 0), None)
    if problem:
        return [missing(n, problem, COMPARED) for n in NAMES]
    return [
        column_shapes(real, synthetic, schema),
        column_pair_trends(real, synthetic, schema, seed=seed),
        missing_rates(real, synthetic, schema),
    ]
