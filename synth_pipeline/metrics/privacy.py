"""Privacy metrics: distance to closest record (DCR), NNDR and anonymeter linkability.

Every distance is Euclidean on one mixed-type embedding fitted on the training table only, so
synthetic->train and holdout->train distances are on the same scale and a fresh real sample is
the reference a release is judged against (DESIGN.md, Metrics and Gate).
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_pipeline.config import Thresholds
from synth_pipeline.copies import training_shares
from synth_pipeline.metrics.base import MetricResult, missing
from synth_pipeline.metrics.distances import (
    dcr_histogram, dcr_quantiles, newcombe_difference, wilson_interval, wilson_sample_size,
)
from synth_pipeline.neighbors import nearest
from synth_pipeline.metrics.evidence import attacks_to_bound, zero_risk_upper
from synth_pipeline.schema import Schema

MIN_HOLDOUT_ROWS = 10
DCR_NAMES = ("memorisation_rate", "dcr_share", "exact_copies", "nndr")
DCR_COMPARED = "synthetic->train vs holdout->train"
LINK_COMPARED = "synthetic links train (ori) vs holdout (control)"
MISSING_LEVEL = "\x00missing"
UNSEEN_LEVEL = "\x00unseen"
_IQR_TO_SD = 1.349  # IQR of a standard normal: (x - median) / (IQR / 1.349) is ~N(0, 1) for normal data


@dataclass(frozen=True)
class MixedEmbedding:
    """Numeric columns -> (x - median) / (IQR / 1.349), with the train std and then 1 as fallbacks
    when the IQR is zero (robust to the heavy tails of lab values, comparable to a z-score), NaN ->
    0 (the scaled median) plus a 0/1 missing indicator. Categorical columns -> one-hot / sqrt(2), so
    any mismatch adds exactly 1 to the squared distance, like a flipped missing indicator. NaN is its
    own level; values seen neither in train nor in the schema's declared categories share one
    "unseen" level, which is still a mismatch against every train value."""

    numeric: tuple[str, ...]
    centre: np.ndarray
    scale: np.ndarray
    categorical: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]

    @property
    def dim(self) -> int:
        return 2 * len(self.numeric) + sum(len(lv) for lv in self.levels)

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        parts = []
        if self.numeric:
            x = df[list(self.numeric)].to_numpy(dtype=np.float64)
            nan = np.isnan(x)
            parts += [np.where(nan, 0.0, (x - self.centre) / self.scale), nan.astype(np.float64)]
        for col, levels in zip(self.categorical, self.levels):
            index = {v: i for i, v in enumerate(levels)}
            codes = np.fromiter(
                (index.get(MISSING_LEVEL if pd.isna(v) else str(v), index[UNSEEN_LEVEL]) for v in df[col]),
                dtype=np.int64,
                count=len(df),
            )
            onehot = np.zeros((len(df), len(levels)))
            onehot[np.arange(len(df)), codes] = 1.0 / math.sqrt(2.0)
            parts.append(onehot)
        return np.hstack(parts) if parts else np.zeros((len(df), 0))


def fit_embedding(train: pd.DataFrame, schema: Schema) -> MixedEmbedding:
    """Fit the scaling and the category vocabulary on the training table only (target included)."""
    numeric = tuple(schema.numeric)
    x = train[list(numeric)].to_numpy(dtype=np.float64) if numeric else np.zeros((len(train), 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: handled by the fallbacks
        centre = np.nanmedian(x, axis=0)
        q75, q25 = np.nanpercentile(x, [75, 25], axis=0) if numeric else (np.zeros(0), np.zeros(0))
        std = np.nanstd(x, axis=0)
    scale = (q75 - q25) / _IQR_TO_SD
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, std)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    centre = np.where(np.isfinite(centre), centre, 0.0)
    levels = []
    for col in schema.categorical:
        declared = schema.column(col).categories or ()
        seen = sorted(set(train[col].dropna().astype(str)) | set(declared))
        levels.append((*seen, MISSING_LEVEL, UNSEEN_LEVEL))
    return MixedEmbedding(numeric, centre, scale, tuple(schema.categorical), tuple(levels))


def _nndr(d: np.ndarray) -> np.ndarray:
    """Nearest / second-nearest distance; 0 when both are 0 (a duplicated row copied exactly)."""
    return np.divide(d[:, 0], d[:, 1], out=np.zeros(len(d)), where=d[:, 1] > 0)


def _table_problem(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> str | None:
    for label, df in (("train", train), ("holdout", holdout), ("synthetic", synthetic)):
        absent = [c for c in schema.names if c not in df.columns]
        if absent:
            return f"{label} table lacks column(s) {absent}"
    if len(synthetic) == 0:
        return "synthetic table is empty"
    if len(holdout) < MIN_HOLDOUT_ROWS:
        return f"holdout has {len(holdout)} rows; at least {MIN_HOLDOUT_ROWS} are needed"
    if len(train) < 2:
        return f"train has {len(train)} rows; at least 2 are needed"
    return None


def exact_copies(
    *, train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, k: int
) -> MetricResult:
    """Synthetic rows equal to a common training combination (one that k or more training rows
    share), as a share, against the holdout's own share of such rows: a copy of a common combination
    reveals nobody, so what is judged is whether the generator copies them more often than fresh
    patients coincide with them (the difference and its Newcombe CI in the detail). Copies of rare
    combinations (fewer than k) are counted apart: the pipeline's copy filter removes them, and
    any left refuse the gate."""
    cols = list(schema.names)
    syn, hold = (training_shares(f, train=train, columns=cols) for f in (synthetic, holdout))
    n_syn, n_hold = len(syn), len(hold)
    common_syn, common_hold = int((syn >= k).sum()), int((hold >= k).sum())
    rare_syn, rare_hold = int(((syn > 0) & (syn < k)).sum()), int(((hold > 0) & (hold < k)).sum())
    lo, hi = newcombe_difference(common_syn, n_syn, common_hold, n_hold)
    return MetricResult(
        name="exact_copies",
        value=common_syn / n_syn,
        ci=wilson_interval(common_syn, n_syn),
        compared="synthetic vs holdout rows equal to a training combination shared by >= k training rows",
        detail={"k": k, "synthetic_common_count": common_syn, "synthetic_rare_count": rare_syn,
                "n_synthetic": n_syn, "holdout_common_count": common_hold, "holdout_rare_count": rare_hold,
                "n_holdout": n_hold, "holdout_rate": common_hold / n_hold,
                "holdout_ci": list(wilson_interval(common_hold, n_hold)),
                "difference": common_syn / n_syn - common_hold / n_hold, "difference_ci": [lo, hi],
                "ci_rule": "Newcombe hybrid score (Wilson), 95%"},
    )


def query_rows(n_rows: int, size: int, seed: int, table: int) -> np.ndarray | None:
    """The rows of one table (0 synthetic, 1 holdout) a DCR search queries: None (every row) when it
    has at most `size` rows, else a seeded sample of `size` rows (sorted), drawn from a stream of its
    own so the seed's other draws stay as they were."""
    if n_rows <= size:
        return None
    rng = np.random.default_rng([seed, 0x64637271, table])  # "dcrq"
    return np.sort(rng.choice(n_rows, size=size, replace=False))


def _sampling(rows: np.ndarray | None, population: int, size: int, width: float, seed: int) -> dict:
    """What the manifest records about the query rows of one table."""
    return {"population": population, "queried": population if rows is None else len(rows),
            "sampled": rows is not None, "sample_size": size, "ci_width_max": width, "seed": seed}


def dcr_metrics(
    train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *, seed: int, k: int = 5,
    ci_width: float = Thresholds().dcr_ci_width_max,
) -> list[MetricResult]:
    """memorisation_rate, dcr_share, exact_copies and nndr (DESIGN.md), in that order.

    Every number is paired with the same quantity for the holdout, a real sample the generator never
    saw: that is what "as close to train as fresh data would be" means.

    Linear in the table size: memorisation, DCR share and NNDR query at most `wilson_sample_size(
    ci_width)` synthetic rows and as many holdout rows (a seeded sample above that, every row below),
    each searched exactly against the full training table (and the DCR share's references), so the
    95% Wilson interval the gate reads is at most `ci_width` wide and no copy can hide from a query;
    `detail["sampling"]` records the sample and population sizes. Exact copies are counted over every
    synthetic row by hashing."""
    problem = _table_problem(train, holdout, synthetic, schema)
    if problem:
        return [missing(name, problem, DCR_COMPARED) for name in DCR_NAMES]
    size = wilson_sample_size(ci_width)
    syn_rows, hold_rows = query_rows(len(synthetic), size, seed, 0), query_rows(len(holdout), size, seed, 1)
    sampling = {"synthetic": _sampling(syn_rows, len(synthetic), size, ci_width, seed),
                "holdout": _sampling(hold_rows, len(holdout), size, ci_width, seed),
                "rule": "at most sample_size query rows per table (seeded sample above it), searched against "
                        "the full training table: the 95% Wilson interval is then at most ci_width_max wide"}
    emb = fit_embedding(train, schema)
    e_train, e_hold = emb.transform(train), emb.transform(holdout)
    e_syn = emb.transform(synthetic if syn_rows is None else synthetic.iloc[syn_rows])
    q_hold = e_hold if hold_rows is None else e_hold[hold_rows]
    d_syn, _ = nearest(e_syn, e_train, k=2)
    d_hold, _ = nearest(q_hold, e_train, k=2)
    n_syn, n_hold = len(d_syn), len(e_hold)

    quantiles = {"synthetic_to_train": dcr_quantiles(d_syn), "holdout_to_train": dcr_quantiles(d_hold)}
    p5 = quantiles["holdout_to_train"]["p5"]
    memorised = int((d_syn[:, 0] < p5).sum())
    memorisation = MetricResult(
        name="memorisation_rate",
        value=memorised / n_syn,
        ci=wilson_interval(memorised, n_syn),
        compared=DCR_COMPARED,
        detail={
            "holdout_p5_dcr": p5,
            "holdout_rate": float((d_hold[:, 0] < p5).mean()),
            "n_synthetic": n_syn,
            "n_memorised": memorised,
            "dcr_quantiles": quantiles,
            "embedding_dim": emb.dim,
            "histogram": dcr_histogram(d_syn[:, 0], d_hold[:, 0]),
            "sampling": sampling,
        },
    )

    rng = np.random.default_rng(seed)
    subset = np.sort(rng.choice(len(train), size=min(n_hold, len(train)), replace=False))
    d_to_train, _ = nearest(e_syn, e_train[subset], k=1)
    d_to_hold, _ = nearest(e_syn, e_hold, k=1)
    closer = float((d_to_train[:, 0] < d_to_hold[:, 0]).sum())
    ties = float((d_to_train[:, 0] == d_to_hold[:, 0]).sum())
    share_count = closer + 0.5 * ties
    share = MetricResult(
        name="dcr_share",
        value=share_count / n_syn,
        ci=wilson_interval(share_count, n_syn),
        compared="synthetic->train subset vs synthetic->holdout (equal sizes)",
        detail={"n_closer_to_train": int(closer), "n_ties": int(ties), "train_subset_size": int(len(subset)),
                "holdout_size": n_hold, "seed": seed, "sampling": {"synthetic": sampling["synthetic"],
                                                                   "rule": sampling["rule"]}},
    )

    exact = exact_copies(train=train, holdout=holdout, synthetic=synthetic, schema=schema, k=k)

    nndr = MetricResult(
        name="nndr",
        value=float(np.median(_nndr(d_syn))),
        compared=DCR_COMPARED,
        detail={"holdout_median": float(np.median(_nndr(d_hold))), "sampling": sampling},
    )
    return [memorisation, share, exact, nndr]


def split_aux_columns(train: pd.DataFrame, schema: Schema) -> tuple[list[str], list[str]]:
    """The attacker's two auxiliary column sets: features ranked by their number of distinct train
    values (most identifying first, ties in schema order), dealt alternately to the two halves. Both
    halves then carry a comparable share of the identifying power, which is the attacker's best shot
    at a link (a half of binary flags links nothing). On FLCHAIN this split sees a 0.05×std perturbed
    copy (risk ≈ 0.11) where the plain alternate-by-schema-order split did not (≈ 0.04)."""
    ranked = sorted(schema.features, key=lambda c: (-train[c].nunique(), schema.features.index(c)))
    return ranked[0::2], ranked[1::2]


def _for_anonymeter(
    frames: tuple[pd.DataFrame, ...], schema: Schema, aux: tuple[list[str], list[str]]
) -> tuple[tuple[pd.DataFrame, ...], tuple[list[str], list[str]]]:
    """Make the tables safe for anonymeter (`frames[0]`, the training table, supplies the medians).
    Its Gower distance is NaN for a numeric NaN against a value (the neighbour search then returns
    arbitrary rows) and its LabelEncoder chokes on mixed str/float categories, so: numeric NaN ->
    train median plus a 0/1 "<col>__missing" column in the same half (a mismatch costs 1, as a
    categorical one does); categorical NaN -> its own level."""
    train = frames[0]
    flagged = [c for c in schema.numeric if c in aux[0] + aux[1] and any(f[c].isna().any() for f in frames)]
    medians = {c: float(train[c].median()) if train[c].notna().any() else 0.0 for c in flagged}
    out = []
    for f in frames:
        g = f[aux[0] + aux[1]].copy()
        for c in schema.categorical:
            if c in g:
                g[c] = g[c].astype(object).where(g[c].notna(), MISSING_LEVEL)
        for c in flagged:
            g[f"{c}__missing"] = g[c].isna().astype(np.float64)
            g[c] = g[c].fillna(medians[c])
        out.append(g.reset_index(drop=True))
    first, second = ([*h, *(f"{c}__missing" for c in h if c in flagged)] for h in aux)
    return tuple(out), (first, second)


def _linkability_targets(n_ori: int, n_control: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the `n` train and `n` holdout targets: the rows anonymeter's
    `LinkabilityEvaluator.evaluate` draws after `np.random.seed(seed)` (one `.sample()` each, a
    `RandomState.permutation`), drawn from a private RandomState so nothing else in the process (a
    dask worker's `sizeof`) can move them."""
    rs = np.random.RandomState(seed)
    return rs.permutation(n_ori)[:n], rs.permutation(n_control)[:n]


def _nearest_synthetic(syn_half: pd.DataFrame, queries: pd.DataFrame, pinned: int, n_neighbors: int) -> np.ndarray:
    """anonymeter's linkability neighbour search (its `_find_nn`) of each query row among the synthetic
    rows; the last `pinned` query rows only hold the range of every numeric column, which anonymeter
    scales by over candidates *and* queries, so a slice of the targets is scaled as the whole set is."""
    # through anonymeter.evaluators: importing anonymeter.neighbors first is a circular import there
    from anonymeter.evaluators.linkability_evaluator import MixedTypeKNeighbors

    idx = MixedTypeKNeighbors(n_jobs=-1, n_neighbors=n_neighbors).fit(syn_half).kneighbors(queries)
    return idx[: len(queries) - pinned]


def _range_rows(queries: pd.DataFrame) -> pd.DataFrame:
    """The rows holding each numeric column's minimum and maximum."""
    num = queries.select_dtypes("number")
    rows = sorted(set(num.to_numpy().argmin(axis=0)) | set(num.to_numpy().argmax(axis=0))) if num.shape[1] else []
    return queries.iloc[rows]


def _linkability_results(
    ori: pd.DataFrame, syn: pd.DataFrame, control: pd.DataFrame, aux: tuple[list[str], list[str]],
    *, n: int, n_neighbors: int, seed: int,
) -> dict:
    """anonymeter's `LinkabilityEvaluator(...).evaluate()` then `.results(n_neighbors=k)` for every
    k <= n_neighbors, with the neighbour searches split into tasks: per side (train, holdout targets),
    per auxiliary half and, on a cluster, per slice of the targets (cluster.map_tasks). Every target's
    neighbours are those of the single search, so the counts are anonymeter's wherever they run
    (tests/test_privacy.py, tests/test_cluster.py). The random-guess baseline, which anonymeter draws
    unseeded and the risk does not read, is drawn from `seed`."""
    from anonymeter.evaluators.linkability_evaluator import LinkabilityIndexes
    from anonymeter.stats.confidence import EvaluationResults

    from synth_pipeline.cluster import map_tasks, task_slots

    t_ori, t_control = _linkability_targets(len(ori), len(control), n, seed)
    halves = [syn[list(cols)] for cols in aux]
    slices = np.array_split(np.arange(n), max(1, min(n, task_slots())))
    items = []
    for targets in (ori.iloc[t_ori], control.iloc[t_control]):
        for h, cols in enumerate(aux):
            queries = targets[list(cols)].reset_index(drop=True)
            pins = _range_rows(queries) if len(slices) > 1 else queries.iloc[:0]
            items += [(halves[h], pd.concat([queries.iloc[s], pins], ignore_index=True), len(pins)) for s in slices]
    found = map_tasks(_nearest_synthetic, items, n_neighbors=n_neighbors)
    per_half = [np.vstack(found[i:i + len(slices)]) for i in range(0, len(found), len(slices))]
    attack, control_links = LinkabilityIndexes(*per_half[0:2]), LinkabilityIndexes(*per_half[2:4])
    rng, k_max = np.random.default_rng(seed), min(n_neighbors, len(syn))
    baseline = LinkabilityIndexes(*(np.array([rng.choice(len(syn), size=k_max, replace=False) for _ in range(n)])
                                    for _ in range(2)))
    with warnings.catch_warnings():
        # anonymeter warns when the random-guess baseline matches the attack; the risk reported here
        # is corrected by the control attack instead, so the warning is noise.
        warnings.filterwarnings("ignore", message="Attack is as good or worse as baseline")
        return {k: EvaluationResults(n_attacks=n, n_success=attack.count_links(n_neighbors=k),
                                     n_baseline=baseline.count_links(n_neighbors=k),
                                     n_control=control_links.count_links(n_neighbors=k))
                for k in range(1, n_neighbors + 1)}


def linkability(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Schema,
    *,
    n_attacks: int = 1000,
    n_neighbors: int = 5,
    seed: int = 0,
    threshold: float = Thresholds().linkability_ci_high_max,
) -> MetricResult:
    """anonymeter linkability (ori=train, syn=synthetic, control=holdout): the excess success, over
    the control set, of re-joining the two auxiliary halves of a record through a shared synthetic
    row among each half's k nearest; value and 95% CI are anonymeter's baseline-corrected risk.

    The attacker: one anonymeter evaluation with `n_neighbors` (5), then the largest k <= 5 whose
    control attack leaves room for evidence, i.e. with which a generator that leaks nothing could
    show an upper bound below `threshold` (`evidence.zero_risk_upper`); k = 1 (anonymeter's default)
    when none does. Five neighbours see lightly perturbed copies that one misses (FLCHAIN), but
    where many correlated numeric columns let each half of a *fresh* record find the same
    neighbours (breast cancer: control success 0.71-0.79 with five), the interval can never be
    narrow and the gate could never pass; one neighbour still links a copy there at 0.99.
    benchmarks/PRIVACY_GATES.md has the measurements. `detail` keeps every k's rates and risk."""
    name = "linkability"
    problem = _table_problem(train, holdout, synthetic, schema)
    if problem:
        return missing(name, problem, LINK_COMPARED)
    if len(schema.features) < 2:
        return missing(name, f"{len(schema.features)} feature column(s); linkability needs 2 to split", LINK_COMPARED)
    n = min(n_attacks, len(holdout), len(train))
    (ori, syn, control), aux = _for_anonymeter((train, synthetic, holdout), schema, split_aux_columns(train, schema))
    per_k = _linkability_results(ori, syn, control, aux, n=n, n_neighbors=n_neighbors, seed=seed)
    usable = [k for k, r in per_k.items() if zero_risk_upper(n, int(r.n_control)) < threshold]
    k = max(usable, default=1)
    results = per_k[k]
    risk = results.risk()
    lo, hi = float(risk.ci[0]), float(risk.ci[1])
    max_attacks = (len(train) + len(holdout)) // 2  # a holdout of half the table (holdout_fraction 0.5)
    return MetricResult(
        name=name,
        value=float(risk.value),
        ci=(lo, hi),
        compared=LINK_COMPARED,
        detail={
            "attack_rate": float(results.attack_rate.value),
            "control_rate": float(results.control_rate.value),
            "n_success": int(results.n_success),
            "n_control_success": int(results.n_control),
            "n_attacks": n,
            "n_neighbors": k,
            "n_neighbors_max": n_neighbors,
            "per_neighbors": {
                str(j): {"risk": float(r.risk().value), "ci": [float(x) for x in r.risk().ci],
                         "attack_rate": float(r.attack_rate.value), "control_rate": float(r.control_rate.value),
                         "zero_risk_upper": zero_risk_upper(n, int(r.n_control))}
                for j, r in per_k.items()
            },
            "aux_cols": [list(a) for a in aux],
            "seed": seed,
            "holdout_rows": len(holdout),
            "table_rows": len(train) + len(holdout),
            "max_attacks": max_attacks,
            "threshold_for_rows_needed": threshold,
            "rows_needed": attacks_to_bound(n, int(results.n_success), int(results.n_control), threshold, max_attacks)
            if float(risk.value) < threshold <= hi else None,
        },
    )
