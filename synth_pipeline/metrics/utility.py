"""Utility: train on synthetic, test on real (TSTR) against train on real, test on real (TRTR).

The same model family, hyper-parameters and seed are fitted once on the synthetic table and once on
the real training table, and both are scored on the real holdout, so the ratio isolates what the
synthetic data lost. Several families, because a generator can suit one learner and not another.
"""

from collections.abc import Callable
from dataclasses import dataclass
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from synth_pipeline.metrics.base import MetricResult, missing
from synth_pipeline.schema import Schema, _as_category_strings

COMPARED = {
    "tstr": "model fitted on synthetic, AUROC on real holdout",
    "trtr": "model fitted on real train, AUROC on real holdout",
    "ratio": "best TSTR AUROC / best TRTR AUROC",
}


def _gbm(cat: list[str], num: list[str], seed: int) -> Pipeline:
    """Gradient boosting with native NaN handling; categories ordinal-coded and declared categorical
    (infrequent levels pooled so the cardinality stays under the 255-bin limit)."""
    encode = ColumnTransformer(
        [
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, max_categories=250), cat),
            ("num", "passthrough", num),
        ]
    )
    model = HistGradientBoostingClassifier(
        categorical_features=[i < len(cat) for i in range(len(cat) + len(num))], random_state=seed
    )
    return make_pipeline(encode, model)


def _logreg(cat: list[str], num: list[str], seed: int) -> Pipeline:
    """A linear reference: median-imputed (with missing indicators) and scaled numerics, one-hot
    categories (NaN its own level, unseen levels ignored)."""
    numeric = make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler())
    encode = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), cat), ("num", numeric, num)])
    return make_pipeline(encode, LogisticRegression(max_iter=5000, random_state=seed))


FAMILIES: dict[str, Callable[[list[str], list[str], int], Pipeline]] = {"gbm": _gbm, "logreg": _logreg}
MAX_CLASSES = 50
# Fits run single-threaded: on tables of this size OpenMP/BLAS threads cost more than they save,
# badly so on a shared machine (FLCHAIN train, 5.5k rows: HistGradientBoosting 3.7 s on 2 threads
# vs 0.18 s on 1), and one thread keeps timings steady when several metrics run side by side.
MODEL_THREADS = 1


@dataclass(frozen=True)
class _Labelled:
    """A table's features and its target as class-label strings, rows with a missing target dropped."""

    x: pd.DataFrame
    y: pd.Series
    dropped: int


def _labelled(df: pd.DataFrame, schema: Schema) -> _Labelled:
    # Same label spelling as conform() gives categorical columns ("1", not "1.0"), so a numeric 0/1
    # target and schema.positive="1" agree.
    y = _as_category_strings(df[schema.target])
    keep = y.notna().to_numpy()
    return _Labelled(df.loc[keep, schema.features], y[keep].astype(str), int((~keep).sum()))


def _task(train: _Labelled, holdout: _Labelled, synthetic: _Labelled, schema: Schema) -> tuple[list[str], str | None] | str:
    """(class labels, positive class or None for multiclass), or why AUROC cannot be scored."""
    classes = sorted(train.y.unique())
    if len(classes) < 2:
        return f"real train target has {len(classes)} class(es); AUROC needs 2"
    if len(classes) > MAX_CLASSES:
        return f"real train target has {len(classes)} distinct values (> {MAX_CLASSES}); not a classification target"
    syn_classes = sorted(synthetic.y.unique())
    if len(syn_classes) < 2:
        return f"synthetic target has {len(syn_classes)} class(es) {syn_classes}; a classifier needs 2"
    extra = sorted(set(syn_classes) - set(classes))
    if extra:
        return f"synthetic target has class(es) {extra} absent from real train"
    absent = sorted(set(classes) - set(holdout.y))
    if absent:
        return f"holdout lacks target class(es) {absent}; AUROC is undefined for them"
    if len(classes) > 2:
        return classes, None
    if schema.positive in classes:
        return classes, schema.positive
    counts = train.y.value_counts().sort_index()
    return classes, str(counts.idxmin())


def _auroc(model: Pipeline, holdout: _Labelled, classes: list[str], positive: str | None) -> float:
    """Binary: AUROC of the positive class; multiclass: macro one-vs-rest over the real classes,
    a class the model never saw scored with probability 0 (AUROC 0.5 for that class)."""
    proba = pd.DataFrame(model.predict_proba(holdout.x), columns=model.classes_).reindex(columns=classes, fill_value=0.0)
    if positive is not None:
        return float(roc_auc_score(holdout.y == positive, proba[positive]))
    return float(roc_auc_score(holdout.y, proba.to_numpy(), multi_class="ovr", average="macro", labels=classes))


def tstr(
    train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *, seed: int
) -> list[MetricResult]:
    """`tstr_auroc[f]` and `trtr_auroc[f]` for every family f, then `tstr_ratio`. Rows with a missing
    target are left out (counted in the detail). Never raises: an unscorable input or a failing fit
    becomes a missing() result saying why."""
    names = [(f"{kind}_auroc[{f}]", COMPARED[kind]) for f in FAMILIES for kind in ("tstr", "trtr")]
    absent = {label: [c for c in schema.names if c not in df.columns]
              for label, df in (("train", train), ("holdout", holdout), ("synthetic", synthetic))}
    problem = "; ".join(f"{label} table lacks column(s) {cols}" for label, cols in absent.items() if cols)
    if not problem:
        tables = {"train": _labelled(train, schema), "holdout": _labelled(holdout, schema),
                  "synthetic": _labelled(synthetic, schema)}
        task = _task(tables["train"], tables["holdout"], tables["synthetic"], schema)
        problem = task if isinstance(task, str) else ""
    if problem:
        return [missing(n, problem, c) for n, c in names] + [missing("tstr_ratio", problem, COMPARED["ratio"])]
    classes, positive = task  # type: ignore[misc]
    info = {"positive": positive, "classes": classes, "average": "binary" if positive else "macro one-vs-rest",
            **{f"n_{k}": len(t.y) for k, t in tables.items()},
            **{f"dropped_missing_target_{k}": t.dropped for k, t in tables.items() if t.dropped},
            "classes_absent_from_synthetic": sorted(set(classes) - set(tables["synthetic"].y)), "seed": seed}
    cat = [c for c in schema.categorical if c != schema.target]
    num = [c for c in schema.numeric if c != schema.target]
    results: list[MetricResult] = []
    scores: dict[str, dict[str, float]] = {}
    for family, make in FAMILIES.items():
        for kind, fit_on in (("tstr", tables["synthetic"]), ("trtr", tables["train"])):
            name = f"{kind}_auroc[{family}]"
            try:
                with threadpool_limits(limits=MODEL_THREADS):
                    auc = _auroc(make(cat, num, seed).fit(fit_on.x, fit_on.y), tables["holdout"], classes, positive)
            except (ValueError, TypeError, ArithmeticError) as e:  # a generator's odd table must not crash the run
                results.append(missing(name, f"{family} fit on {kind} failed: {type(e).__name__}: {e}", COMPARED[kind]))
                continue
            scores.setdefault(family, {})[kind] = auc
            results.append(MetricResult(name=name, value=auc, compared=COMPARED[kind], detail=dict(info)))
    complete = {f: s for f, s in scores.items() if len(s) == 2}
    if not complete:
        reasons = "; ".join(r.error or "" for r in results if not r.computed)
        return results + [missing("tstr_ratio", f"no model family scored on both tables ({reasons})", COMPARED["ratio"])]
    best_tstr = max(complete, key=lambda f: complete[f]["tstr"])
    best_trtr = max(complete, key=lambda f: complete[f]["trtr"])
    ratio = complete[best_tstr]["tstr"] / complete[best_trtr]["trtr"]
    results.append(
        MetricResult(
            name="tstr_ratio",
            value=float(ratio),
            compared=COMPARED["ratio"],
            detail={**info, "best_tstr": complete[best_tstr]["tstr"], "best_tstr_family": best_tstr,
                    "best_trtr": complete[best_trtr]["trtr"], "best_trtr_family": best_trtr,
                    "families": {f: {**s, "ratio": s["tstr"] / s["trtr"]} for f, s in complete.items()}},
        )
    )
    return results
