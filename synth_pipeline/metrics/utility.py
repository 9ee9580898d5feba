"""Utility: train on synthetic, test on real (TSTR) against train on real, test on real (TRTR), and
the augmentation case: real train + synthetic minority-class rows against real train alone.

The same model family, hyper-parameters and seed are fitted on each training table and all are scored
on the real holdout, so the comparison isolates what the synthetic data lost (or added). Several
families (gradient boosting, logistic regression, random forest), because a generator can suit one
learner and not another.

Scores: AUROC and AUPRC (average precision, scikit-learn's step-wise definition) of the positive
class for a binary target, macro one-vs-rest for a multiclass one. Each comes with a 95% percentile
bootstrap CI over the holdout rows (N_BOOT seeded resamples). The same resamples score every model,
so the TSTR/TRTR ratios and the augmentation differences get paired CIs (ratio or difference taken
within each resample). The point estimate is always the full-holdout score.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from synth_pipeline.cluster import map_tasks
from synth_pipeline.metrics.base import MetricResult, missing
from synth_pipeline.schema import Schema, _as_category_strings

COMPARED = {
    "tstr": "model fitted on synthetic, scored on real holdout",
    "trtr": "model fitted on real train, scored on real holdout",
    "family_ratio": "TSTR / TRTR of one model family (paired bootstrap CI)",
    "ratio": "best TSTR AUROC / best TRTR AUROC",
    "augmented": "model fitted on real train + synthetic minority-class rows, scored on real holdout",
    "real_only": "model fitted on real train alone, scored on real holdout",
    "delta": "augmented - real-only score (paired bootstrap CI)",
}
SCORES = ("auroc", "auprc")
N_BOOT = 200
CI_LEVEL = 0.95
MIN_ROWS = 20  # per labelled table; fewer and a score (let alone its CI) means nothing
_BOOT_CELLS = 4_000_000  # resample x row weights held in memory at once
# Above these sizes a seeded random subsample is used (recorded in each metric's detail): every model
# is fitted on at most FIT_MAX_ROWS rows of its training table and scored (with the bootstrap) on at
# most SCORE_MAX_ROWS holdout rows. Memory and time stay flat beyond them (a 100-tree random forest on
# 7M rows needs ~9 GB), while the AUROCs' CIs are already narrow; the bundled tables are far below.
FIT_MAX_ROWS = 50_000
SCORE_MAX_ROWS = 50_000


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


def _rf(cat: list[str], num: list[str], seed: int) -> Pipeline:
    """Random forest (NaN handled natively by the trees); categories ordinal-coded, unseen levels -1."""
    encode = ColumnTransformer(
        [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2), cat),
         ("num", "passthrough", num)]
    )
    model = RandomForestClassifier(n_estimators=100, min_samples_leaf=5, random_state=seed, n_jobs=MODEL_THREADS)
    return make_pipeline(encode, model)


FAMILIES: dict[str, Callable[[list[str], list[str], int], Pipeline]] = {"gbm": _gbm, "logreg": _logreg, "rf": _rf}
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


def _real_task(train: _Labelled, holdout: _Labelled, schema: Schema) -> tuple[list[str], str | None] | str:
    """(class labels, positive class or None for multiclass) of the real tables, or why no score can be had."""
    for label, t in (("real train", train), ("holdout", holdout)):
        if len(t.y) < MIN_ROWS:
            return f"too few rows: {label} has {len(t.y)} row(s) with a target (< {MIN_ROWS})"
    classes = sorted(train.y.unique())
    if len(classes) < 2:
        return f"real train target has {len(classes)} class(es); AUROC needs 2"
    if len(classes) > MAX_CLASSES:
        return f"real train target has {len(classes)} distinct values (> {MAX_CLASSES}); not a classification target"
    absent = sorted(set(classes) - set(holdout.y))
    if absent:
        return f"holdout lacks target class(es) {absent}; AUROC is undefined for them"
    if len(classes) > 2:
        return classes, None
    if schema.positive in classes:
        return classes, schema.positive
    counts = train.y.value_counts().sort_index()
    return classes, str(counts.idxmin())


def _task(train: _Labelled, holdout: _Labelled, synthetic: _Labelled, schema: Schema) -> tuple[list[str], str | None] | str:
    """As _real_task, and the synthetic table must be a usable training table on its own."""
    task = _real_task(train, holdout, schema)
    if isinstance(task, str):
        return task
    if len(synthetic.y) < MIN_ROWS:
        return f"too few rows: synthetic has {len(synthetic.y)} row(s) with a target (< {MIN_ROWS})"
    syn_classes = sorted(synthetic.y.unique())
    if len(syn_classes) < 2:
        return f"synthetic target has {len(syn_classes)} class(es) {syn_classes}; a classifier needs 2"
    extra = sorted(set(syn_classes) - set(task[0]))
    if extra:
        return f"synthetic target has class(es) {extra} absent from real train"
    return task


def _missing_columns(schema: Schema, **tables: pd.DataFrame) -> str:
    return "; ".join(f"{label} table lacks column(s) {cols}" for label, df in tables.items()
                     if (cols := [c for c in schema.names if c not in df.columns]))


def weighted_auroc_ap(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUROC and average precision of binary labels `y` (n,) ranked by `score` (n,), once per row of
    `weights` (m, n): row counts of a bootstrap resample, or ones for the plain score. Tied scores
    count half (AUROC) and form one threshold (AP), as in scikit-learn. NaN where a weighting leaves
    no positive (both) or no negative (AUROC)."""
    order = np.argsort(-score, kind="mergesort")
    s, yy = score[order], y[order].astype(float)
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    w = weights[:, order]
    pos = np.add.reduceat(w * yy, starts, axis=1)
    neg = np.add.reduceat(w, starts, axis=1) - pos
    tp, fp = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    n_pos, n_neg = tp[:, -1], fp[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        auroc = (pos * (n_neg[:, None] - fp + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-300), 0.0)
        ap = (pos * precision).sum(axis=1) / n_pos
    auroc[(n_pos == 0) | (n_neg == 0)] = np.nan
    ap[n_pos == 0] = np.nan
    return auroc, ap


def _resamples(n: int, seed: int, n_boot: int = N_BOOT):
    """Bootstrap resamples of n rows as (chunk, n) count matrices; the same sequence for the same seed."""
    rng = np.random.default_rng(seed)
    step = max(1, _BOOT_CELLS // max(n, 1))
    for lo in range(0, n_boot, step):
        b = min(step, n_boot - lo)
        idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(float)


@dataclass(frozen=True)
class _Scored:
    point: dict[str, float]  # score name -> full-holdout value
    boot: dict[str, np.ndarray]  # score name -> (N_BOOT,) resampled values, NaN where undefined


def _score_all(y: pd.Series, probas: dict, classes: list[str], positive: str | None, seed: int) -> dict:
    """AUROC and AUPRC of every model's holdout probabilities, point and bootstrap, all models on the
    same resamples. Binary: the positive class; multiclass: macro mean over the one-vs-rest classes
    (a resample missing a class is undefined, NaN)."""
    targets = [positive] if positive is not None else classes
    truth = {c: (y == c).to_numpy() for c in targets}
    n = len(y)

    def both(proba: pd.DataFrame, w: np.ndarray) -> dict[str, np.ndarray]:
        per = [weighted_auroc_ap(truth[c], proba[c].to_numpy(dtype=float), w) for c in targets]
        return {"auroc": np.mean([a for a, _ in per], axis=0), "auprc": np.mean([p for _, p in per], axis=0)}

    point = {k: {m: float(v[0]) for m, v in both(p, np.ones((1, n))).items()} for k, p in probas.items()}
    chunks: dict = {k: {m: [] for m in SCORES} for k in probas}
    for w in _resamples(n, seed):
        for k, p in probas.items():
            for m, v in both(p, w).items():
                chunks[k][m].append(v)
    return {k: _Scored(point[k], {m: np.concatenate(chunks[k][m]) for m in SCORES}) for k in probas}


def _ci(boot: np.ndarray) -> tuple[float, float] | None:
    """Percentile interval of the defined resamples; None when fewer than half are defined."""
    ok = boot[np.isfinite(boot)]
    if len(ok) < len(boot) / 2:
        return None
    tail = 100 * (1 - CI_LEVEL) / 2
    lo, hi = np.percentile(ok, [tail, 100 - tail])
    return float(lo), float(hi)


def _scored_result(name: str, value: float, boot: np.ndarray, compared: str, info: dict) -> MetricResult:
    return MetricResult(name=name, value=float(value), ci=_ci(boot), compared=compared,
                        detail={**info, "n_boot_defined": int(np.isfinite(boot).sum())})


def _predict(family: str, label: str, fit_on: _Labelled, holdout: _Labelled, classes: list[str],
             cat: list[str], num: list[str], seed: int) -> pd.DataFrame | str:
    """Holdout class probabilities (columns = the real classes, a class the model never saw scored 0)
    of `family` fitted on `fit_on`, or why the fit failed."""
    try:
        with threadpool_limits(limits=MODEL_THREADS):
            model = FAMILIES[family](cat, num, seed).fit(fit_on.x, fit_on.y)
            proba = model.predict_proba(holdout.x)
    except (ValueError, TypeError, ArithmeticError) as e:  # a generator's odd table must not crash the run
        return f"{family} fit on {label} failed: {type(e).__name__}: {e}"
    return pd.DataFrame(proba, columns=model.classes_).reindex(columns=classes, fill_value=0.0)


def _subsample(t: _Labelled, most: int, seed: int, stream: int) -> _Labelled:
    """`t` itself up to `most` rows, else a seeded random `most` of its rows (in table order); each table
    has its own random stream, so capping one never moves another's sample."""
    if len(t.y) <= most:
        return t
    keep = np.sort(np.random.default_rng([seed, stream]).choice(len(t.y), size=most, replace=False))
    return _Labelled(t.x.iloc[keep], t.y.iloc[keep], t.dropped)


def _capped(fits: dict[str, _Labelled], holdout: _Labelled, seed: int) -> tuple[dict, _Labelled, dict]:
    """The tables as fitted and scored (FIT_MAX_ROWS / SCORE_MAX_ROWS) and, when any was cut, what was
    used, for the detail: {"subsample": {"fit_rows": {...}, "scored_holdout_rows": n, ...}} or {}."""
    used = {k: _subsample(t, FIT_MAX_ROWS, seed, i + 1) for i, (k, t) in enumerate(fits.items())}
    hold = _subsample(holdout, SCORE_MAX_ROWS, seed, 0)
    if hold is holdout and all(used[k] is fits[k] for k in fits):
        return used, hold, {}
    return used, hold, {"subsample": {"fit_rows": {k: len(t.y) for k, t in used.items()},
                                      "scored_holdout_rows": len(hold.y), "fit_max_rows": FIT_MAX_ROWS,
                                      "score_max_rows": SCORE_MAX_ROWS, "how": "seeded uniform, without replacement"}}


def _fit_all(fits: dict[str, _Labelled], holdout: _Labelled, classes: list[str], positive: str | None,
             schema: Schema, seed: int) -> tuple[dict, dict, dict]:
    """({(family, label): _Scored}, {(family, label): error}, the subsample used or {}) for every family
    on every training table, each capped as _capped says."""
    cat = [c for c in schema.categorical if c != schema.target]
    num = [c for c in schema.numeric if c != schema.target]
    fits, holdout, used = _capped(fits, holdout, seed)
    probas, errors = {}, {}
    keys = [(family, label) for family in FAMILIES for label in fits]
    found = map_tasks(_predict, [(f, lab, fits[lab]) for f, lab in keys], holdout=holdout, classes=classes,
                      cat=cat, num=num, seed=seed)  # one task per fit: on the cluster when one is configured
    for key, r in zip(keys, found):
        (errors if isinstance(r, str) else probas)[key] = r
    return _score_all(holdout.y, probas, classes, positive, seed), errors, used


def _info(tables: dict[str, _Labelled], classes: list[str], positive: str | None, seed: int) -> dict:
    holdout = tables["holdout"].y
    prevalence = {c: float((holdout == c).mean()) for c in ([positive] if positive else classes)}
    return {"positive": positive, "classes": classes, "average": "binary" if positive else "macro one-vs-rest",
            **{f"n_{k}": len(t.y) for k, t in tables.items()},
            **{f"dropped_missing_target_{k}": t.dropped for k, t in tables.items() if t.dropped},
            "holdout_prevalence": prevalence, "seed": seed, "n_boot": N_BOOT,
            "ci": f"{CI_LEVEL:.0%} percentile bootstrap over holdout rows"}


def _paired(name: str, a: tuple, b: tuple, scored: dict, errors: dict, op, compared: str, info: dict) -> MetricResult:
    """op(score of a, score of b), point and within each resample, or missing naming what failed."""
    (ka, metric), (kb, _) = a, b
    failed = [errors[k] for k in (ka, kb) if k in errors]
    if failed:
        return missing(name, "; ".join(failed), compared)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = op(scored[ka].boot[metric], scored[kb].boot[metric])
    return _scored_result(name, op(scored[ka].point[metric], scored[kb].point[metric]), boot, compared, info)


def _single(name: str, key: tuple, metric: str, scored: dict, errors: dict, compared: str, info: dict) -> MetricResult:
    if key in errors:
        return missing(name, errors[key], compared)
    return _scored_result(name, scored[key].point[metric], scored[key].boot[metric], compared, info)


def tstr_names() -> list[str]:
    """Result names of tstr(), in order."""
    return [*(n for f in FAMILIES for n in (*(f"{k}_{m}[{f}]" for m in SCORES for k in ("tstr", "trtr")),
                                             *(f"{m}_ratio[{f}]" for m in SCORES))), "tstr_ratio"]


def tstr(
    train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *, seed: int
) -> list[MetricResult]:
    """Per family f: `tstr_auroc[f]`, `trtr_auroc[f]`, `tstr_auprc[f]`, `trtr_auprc[f]` and the
    paired ratios `auroc_ratio[f]`, `auprc_ratio[f]` (TSTR / TRTR), each with a bootstrap CI; then
    `tstr_ratio`, the best TSTR AUROC over the families / the best TRTR AUROC (what tstr_gate
    judges; its CI is the paired bootstrap of those two families' scores). Rows with a missing target
    are left out (counted in the detail). Never raises: an unscorable input or a failing fit becomes
    a missing() result saying why."""
    names = tstr_names()
    problem = _missing_columns(schema, train=train, holdout=holdout, synthetic=synthetic)
    if not problem:
        tables = {"train": _labelled(train, schema), "holdout": _labelled(holdout, schema),
                  "synthetic": _labelled(synthetic, schema)}
        task = _task(tables["train"], tables["holdout"], tables["synthetic"], schema)
        problem = task if isinstance(task, str) else ""
    if problem:
        return [missing(n, problem, COMPARED["ratio" if n == "tstr_ratio" else "family_ratio" if "_ratio[" in n
                                             else n[:4]]) for n in names]
    classes, positive = task  # type: ignore[misc]
    info = {**_info(tables, classes, positive, seed),
            "classes_absent_from_synthetic": sorted(set(classes) - set(tables["synthetic"].y))}
    scored, errors, used = _fit_all({"tstr": tables["synthetic"], "trtr": tables["train"]}, tables["holdout"],
                                    classes, positive, schema, seed)
    info.update(used)
    results: list[MetricResult] = []
    for f in FAMILIES:
        results += [_single(f"{k}_{m}[{f}]", (f, k), m, scored, errors, COMPARED[k], info)
                    for m in SCORES for k in ("tstr", "trtr")]
        results += [_paired(f"{m}_ratio[{f}]", ((f, "tstr"), m), ((f, "trtr"), m), scored, errors, np.divide,
                            COMPARED["family_ratio"], info) for m in SCORES]
    complete = [f for f in FAMILIES if (f, "tstr") in scored and (f, "trtr") in scored]
    if not complete:
        reasons = "; ".join(errors.values())
        return results + [missing("tstr_ratio", f"no model family scored on both tables ({reasons})", COMPARED["ratio"])]
    best_tstr = max(complete, key=lambda f: scored[(f, "tstr")].point["auroc"])
    best_trtr = max(complete, key=lambda f: scored[(f, "trtr")].point["auroc"])
    families = {}
    for f in complete:
        t, r = scored[(f, "tstr")].point, scored[(f, "trtr")].point
        families[f] = {"tstr": t["auroc"], "trtr": r["auroc"], "ratio": t["auroc"] / r["auroc"],
                       "tstr_auprc": t["auprc"], "trtr_auprc": r["auprc"], "auprc_ratio": t["auprc"] / r["auprc"]}
    ratio = _paired("tstr_ratio", ((best_tstr, "tstr"), "auroc"), ((best_trtr, "trtr"), "auroc"), scored, errors,
                    np.divide, COMPARED["ratio"], info)
    detail = {**ratio.detail, "best_tstr": families[best_tstr]["tstr"], "best_tstr_family": best_tstr,
              "best_trtr": families[best_trtr]["trtr"], "best_trtr_family": best_trtr, "families": families}
    return results + [replace(ratio, detail=detail)]


def minority_classes(y: pd.Series) -> list[str]:
    """Classes whose share of `y` is below an even share (1 / number of classes): the smaller class of
    a binary target; none when the classes are balanced."""
    share = y.value_counts(normalize=True)
    return sorted(str(c) for c in share.index[share < 1 / len(share) - 1e-12])


def augmentation_names() -> list[str]:
    """Result names of augmentation(), in order."""
    return [n for f in FAMILIES for n in (*(f"{k}_{m}[{f}]" for m in SCORES for k in ("augmented", "real_only")),
                                          *(f"augmentation_delta_{m}[{f}]" for m in SCORES))]


def augmentation(
    train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *, seed: int
) -> list[MetricResult]:
    """The case oversamplers exist for: real train + synthetic rows of the minority class(es) against
    real train alone, every family, scored on the real holdout. Per family f: `augmented_auroc[f]`,
    `real_only_auroc[f]`, `augmented_auprc[f]`, `real_only_auprc[f]` and the paired differences
    `augmentation_delta_auroc[f]`, `augmentation_delta_auprc[f]` (augmented - real-only; > 0 means the
    synthetic rows helped), each with a bootstrap CI.

    Minority classes are those below an even share of real train (see minority_classes). Synthetic
    rows of each are added up to the count that brings it level with the majority class (a seeded
    sample when the synthetic table has more). Never raises; missing() says why when the inputs
    cannot be scored or the synthetic table has no minority-class rows."""
    names = augmentation_names()

    def refuse(reason: str) -> list[MetricResult]:
        return [missing(n, reason, COMPARED[n.split("_")[0] if n.startswith("augmented") else
                                            "delta" if "delta" in n else "real_only"]) for n in names]

    problem = _missing_columns(schema, train=train, holdout=holdout, synthetic=synthetic)
    if problem:
        return refuse(problem)
    real, hold, syn = _labelled(train, schema), _labelled(holdout, schema), _labelled(synthetic, schema)
    task = _real_task(real, hold, schema)
    if isinstance(task, str):
        return refuse(task)
    classes, positive = task
    minority = minority_classes(real.y)
    if not minority:
        return refuse(f"real train classes are balanced ({real.y.value_counts().to_dict()}); no minority class to augment")
    counts = real.y.value_counts()
    rng = np.random.default_rng(seed)
    picked, added = [], {}
    for c in minority:
        rows = np.flatnonzero((syn.y == c).to_numpy())
        need = int(counts.max() - counts[c])
        if len(rows) > need:
            rows = np.sort(rng.choice(rows, size=need, replace=False))
        picked.append(rows)
        added[c] = len(rows)
    picked_rows = np.concatenate(picked)
    if len(picked_rows) == 0:
        return refuse(f"synthetic table has no rows of the minority class(es) {minority}; nothing to augment with")
    augmented = _Labelled(pd.concat([real.x, syn.x.iloc[picked_rows]], ignore_index=True),
                          pd.concat([real.y, syn.y.iloc[picked_rows]], ignore_index=True), 0)
    tables = {"train": real, "holdout": hold, "synthetic": syn}
    info = {**_info(tables, classes, positive, seed), "minority_classes": minority, "synthetic_rows_added": added,
            "train_class_counts": {str(k): int(v) for k, v in counts.items()}}
    scored, errors, used = _fit_all({"augmented": augmented, "real_only": real}, hold, classes, positive, schema, seed)
    info.update(used)
    results: list[MetricResult] = []
    for f in FAMILIES:
        results += [_single(f"{k}_{m}[{f}]", (f, k), m, scored, errors, COMPARED[k], info)
                    for m in SCORES for k in ("augmented", "real_only")]
        results += [_paired(f"augmentation_delta_{m}[{f}]", ((f, "augmented"), m), ((f, "real_only"), m), scored,
                            errors, np.subtract, COMPARED["delta"], info) for m in SCORES]
    return results
