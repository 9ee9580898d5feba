"""Fidelity: does the synthetic table look like the real one, column by column and pair by pair?

Scores are SDMetrics' (the same ones SDV's quality report averages), all in [0, 1], 1 = identical:
KSComplement / TVComplement per column, CorrelationSimilarity for numeric pairs and
ContingencySimilarity (numerics binned into 10 real-data bins) for the other pairs,
MissingValueSimilarity (1 - |difference in missing rate|) per column. Details list the worst first,
because those are what a reviewer reads.

On top, a classifier two-sample test (C2ST): gradient boosting trained to tell real rows from
synthetic ones, its cross-validated AUROC the score (0.5 = indistinguishable, 1 = every synthetic
row is recognisable), with the columns that give the synthetic rows away ranked by permutation
importance. It sees the joint distribution, which the per-column and per-pair scores cannot.
"""

import itertools
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats
from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
from sdmetrics.errors import ConstantInputError, IncomputableMetricError
from sdmetrics.single_column import KSComplement, MissingValueSimilarity, TVComplement

from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from synth_pipeline.metrics.base import MetricResult, missing
from synth_pipeline.schema import Schema

COMPARED = "synthetic vs real"
NAMES = ("column_shapes", "column_pair_trends", "missing_rates", "c2st")
MAX_PAIRS = 100
MAX_PAIR_ROWS = 20000
_INCOMPUTABLE = (ValueError, ConstantInputError, IncomputableMetricError)
C2ST_COMPARED = "classifier real vs synthetic, cross-validated AUROC (0.5 = indistinguishable)"
C2ST_MAX_ROWS = 10_000  # per side
C2ST_MIN_ROWS = 50  # per side: five folds need a few of each in every test fold
C2ST_FOLDS = 5
C2ST_MAX_LEVELS = 250  # categories kept per column (the rest pooled), under HistGradientBoosting's 255 bins
C2ST_IMPORTANCE_ROWS = 2000  # test-fold rows each permutation is scored on


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


def _c2st_features(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema
                   ) -> tuple[pd.DataFrame, list[bool], dict[str, list[str]], list[dict]]:
    """Both tables stacked (real first) and encoded for HistGradientBoosting: categories as codes of
    their observed levels (the most frequent C2ST_MAX_LEVELS kept, the rest one pooled level),
    numerics as floats (±inf as missing), and a NaN indicator for each column with a missing value on
    either side. Returns (features, categorical mask, schema column -> its feature columns, columns
    left out with the reason)."""
    both = pd.concat([real[schema.names], synthetic[schema.names]], ignore_index=True)
    cats = set(schema.categorical)
    out, mask, groups, unsupported = {}, [], {}, []
    for c in schema.names:
        col = both[c]
        if c in cats:
            text = col.map(lambda v: v if pd.isna(v) else str(v))
            keep = text.value_counts().index[:C2ST_MAX_LEVELS]
            codes = pd.Series(pd.Categorical(text.where(text.isin(keep) | text.isna(), "\0other"),
                                             categories=[*keep, "\0other"]).codes, dtype=float)
            values = codes.where(codes >= 0)
        else:
            if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                unsupported.append({"item": c, "reason": f"declared numeric but stored as {col.dtype}"})
                continue
            values = col.astype(float).replace([np.inf, -np.inf], np.nan)
        out[c], groups[c] = values.to_numpy(), [c]
        mask.append(c in cats)
        if col.isna().any():
            out[f"{c} is missing"] = col.isna().to_numpy(dtype=float)
            groups[c].append(f"{c} is missing")
            mask.append(False)
    return pd.DataFrame(out), mask, groups, unsupported


def c2st(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *, seed: int,
         max_rows: int = C2ST_MAX_ROWS) -> MetricResult:
    """Classifier two-sample test. Both tables are subsampled (seeded) to the same size, at most
    `max_rows` each, so 0.5 is the no-information AUROC; HistGradientBoosting (single thread, native
    categories and NaN) is trained to tell them apart in C2ST_FOLDS-fold stratified CV.

    value: the mean of the fold AUROCs. ci: 95% Student-t interval of that mean with the
    Nadeau-Bengio corrected variance (fold variance x (1/k + n_test/n_train)), which allows for the
    folds sharing training rows; the fold AUROCs are in the detail. detail["features"]: every column
    with its permutation importance (mean AUROC drop over the test folds when the column and its NaN
    indicator are shuffled together), largest first: the columns that give the synthetic away."""
    n = min(len(real), len(synthetic), max_rows)
    if n < C2ST_MIN_ROWS:
        return missing("c2st", f"too few rows: {min(len(real), len(synthetic))} on the smaller side "
                               f"(< {C2ST_MIN_ROWS})", C2ST_COMPARED)
    rng = np.random.default_rng(seed)
    real = real.iloc[np.sort(rng.choice(len(real), size=n, replace=False))]
    synthetic = synthetic.iloc[np.sort(rng.choice(len(synthetic), size=n, replace=False))]
    x, mask, groups, unsupported = _c2st_features(real, synthetic, schema)
    if not groups:
        why = "; ".join(f"{u['item']}: {u['reason']}" for u in unsupported)
        return missing("c2st", f"no column the classifier can use ({why})", C2ST_COMPARED)
    y = np.r_[np.zeros(n), np.ones(n)]
    folds, importance = [], {c: [] for c in groups}
    cv = StratifiedKFold(n_splits=C2ST_FOLDS, shuffle=True, random_state=seed)
    with threadpool_limits(limits=1):
        for i, (fit_rows, test_rows) in enumerate(cv.split(x, y)):
            model = HistGradientBoostingClassifier(categorical_features=mask, early_stopping=True, random_state=seed)
            model.fit(x.iloc[fit_rows], y[fit_rows])
            test_x, test_y = x.iloc[test_rows], y[test_rows]
            auc = float(roc_auc_score(test_y, model.predict_proba(test_x)[:, 1]))
            folds.append(auc)
            sub = rng.choice(len(test_rows), size=min(C2ST_IMPORTANCE_ROWS, len(test_rows)), replace=False)
            px, py = test_x.iloc[sub].reset_index(drop=True), test_y[sub]
            base = float(roc_auc_score(py, model.predict_proba(px)[:, 1]))
            for c, cols in groups.items():
                shuffled = px.copy()
                shuffled[cols] = px[cols].to_numpy()[rng.permutation(len(px))]
                importance[c].append(base - float(roc_auc_score(py, model.predict_proba(shuffled)[:, 1])))
    k = len(folds)
    mean, sd = float(np.mean(folds)), float(np.std(folds, ddof=1))
    half = float(stats.t.ppf(0.975, k - 1)) * sd * np.sqrt(1 / k + 1 / (k - 1))
    features = sorted(({"item": c, "importance": float(np.mean(v)), "kind": "categorical" if c in schema.categorical
                        else "numeric", "encoded_as": groups[c]} for c, v in importance.items()),
                      key=lambda d: -d["importance"])
    return MetricResult(
        name="c2st", value=mean, ci=(max(0.0, mean - half), min(1.0, mean + half)), compared=C2ST_COMPARED,
        detail={"fold_auroc": folds, "folds": k, "n_per_side": n, "n_real": len(real), "n_synthetic": len(synthetic),
                "features": features, "top_features": [d["item"] for d in features[:5]], "worst": features[0]["item"],
                "unsupported": unsupported, "model": "HistGradientBoostingClassifier (early stopping on a 10% validation split, 1 thread)",
                "importance": "permutation: mean test-fold AUROC drop, column and NaN indicator shuffled together",
                "ci_method": "Student t, Nadeau-Bengio corrected fold variance", "seed": seed},
    )


def fidelity_metrics(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *, seed: int) -> list[MetricResult]:
    """column_shapes, column_pair_trends, missing_rates and c2st, in that order."""
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
        c2st(real, synthetic, schema, seed=seed),
    ]
