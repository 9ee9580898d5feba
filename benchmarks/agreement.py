"""Agreement with peers: the metrics synth_pipeline shares with SDMetrics 0.32 and anonymeter 1.1.0,
computed with our code and with the peer's own code on the same data, side by side.

    .venv/bin/python benchmarks/agreement.py                  # FLCHAIN and ACTG175 -> benchmarks/AGREEMENT.md
    .venv/bin/python benchmarks/agreement.py --datasets flchain --dcr-rows 200

Data: the bundled real FLCHAIN and ACTG175 tables (synth_pipeline.data.load_dataset +
preprocess.model_table), the pipeline's seeded stratified 70/30 split (seed 0), and two candidates of
train's size: `gaussian_copula` (the default generator, seed 0) and `copy` (the control that replays
the training rows). Every row of the output table is one quantity: ours, the peer's, |difference|,
and a verdict: "agree within TOL" where the two should be the same number (TOL stated), or, where the
peer computes a different quantity, what differs and whether the two point the same way.

SDMetrics' DCR (dcr_utils.calculate_dcr, a pandas cross join) costs ~25 ms per synthetic row against
a 5.5k-row reference on this machine, so the peer DCR rows use a seeded sample of --dcr-rows
synthetic rows (each row's DCR does not depend on the other synthetic rows, so this only adds
sampling noise to the shares: SE <= 0.5/sqrt(rows)); our distances are computed on the same rows for
the row-by-row comparison. Everything else uses the full tables.

The functions here are what tests/test_agreement.py asserts on (a fast subset).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from synth_pipeline import preprocess  # noqa: E402
from synth_pipeline.data import load_dataset  # noqa: E402
from synth_pipeline.schema import Schema  # noqa: E402

TOL_EXACT = 1e-9  # the same library function on the same inputs
TOL_LINK = 0.0  # the same anonymeter call, same inputs and seed: bit-identical
TOL_SCORER = 1e-12  # our weighted AUROC / AP vs scikit-learn's on the same scores
TOL_TSTR = 0.01  # same model spec, independently coded preprocessing
TOL_DCR_SHARE = 0.05  # same share definition, different distance (Gower-type L1 vs our scaled Euclidean)


@dataclass
class Row:
    dataset: str
    candidate: str
    metric: str
    ours: float | None
    peer: float | None
    tol: float | None  # None: not the same quantity, the verdict says how they relate
    note: str  # why they differ (or what the peer is)

    @property
    def diff(self) -> float | None:
        if self.ours is None or self.peer is None or not (math.isfinite(self.ours) and math.isfinite(self.peer)):
            return None
        return abs(self.ours - self.peer)

    @property
    def agrees(self) -> bool | None:
        if self.tol is None:
            return None
        return self.diff is not None and self.diff <= self.tol

    @property
    def verdict(self) -> str:
        if self.tol is None:
            return f"different quantity: {self.note}"
        if self.agrees:
            return f"agree within {self.tol:g}" + (f" ({self.note})" if self.note else "")
        return f"DIFFER beyond {self.tol:g}: {self.note}"


# ---------------------------------------------------------------------------------------------- data


def load(name: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, Schema]:
    lt = load_dataset(name)
    table = preprocess.model_table(lt.raw, lt.schema)
    s = preprocess.split(table, lt.schema, holdout_fraction=0.3, seed=seed)
    return s.train, s.holdout, lt.schema


def candidate(generator: str, train: pd.DataFrame, schema: Schema, seed: int = 0) -> pd.DataFrame:
    from synth_pipeline.generators import make_generator

    gen = make_generator(generator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen.fit(train, schema, target=schema.target, seed=seed)
        return gen.sample(len(train), seed=seed).reset_index(drop=True)


def sdv_metadata(schema: Schema) -> dict:
    """SDMetrics' single-table metadata dict, sdtypes from our declared schema."""
    return {"columns": {c: {"sdtype": "categorical" if c in schema.categorical else "numerical"} for c in schema.names}}


# ------------------------------------------------------------------------------------------ fidelity


def fidelity_rows(ds, cand, train, syn, schema, seed: int) -> list[Row]:
    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
    from sdmetrics.reports.single_table import QualityReport
    from sdmetrics.single_column import KSComplement, TVComplement

    from synth_pipeline.metrics import fidelity

    ours_shapes = fidelity.column_shapes(train, syn, schema).value
    direct = [(TVComplement if c in schema.categorical else KSComplement).compute(train[c], syn[c]) for c in schema.names]
    pairs_result = fidelity.column_pair_trends(train, syn, schema, seed=seed)
    ours_pairs = pairs_result.value
    used = {tuple(d["columns"]) for d in pairs_result.detail["items"]}
    num = set(schema.numeric)
    pair_scores, used_scores = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, a in enumerate(schema.names):
            for b in schema.names[i + 1:]:
                cols = [a, b]
                if a in num and b in num:
                    score = CorrelationSimilarity.compute(train[cols], syn[cols])
                else:
                    cont = [c for c in cols if c in num] or None
                    score = ContingencySimilarity.compute(train[cols], syn[cols], continuous_column_names=cont)
                pair_scores.append(score)
                if (a, b) in used:
                    used_scores.append(score)
        report = QualityReport()
        report.generate(train[schema.names], syn[schema.names], sdv_metadata(schema), verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    n_pairs = len(schema.names) * (len(schema.names) - 1) // 2
    return [
        Row(ds, cand, "column_shapes vs KSComplement/TVComplement (mean over columns)", ours_shapes,
            float(np.mean(direct)), TOL_EXACT, "the same SDMetrics functions on the same observed values"),
        Row(ds, cand, "column_shapes vs QualityReport 'Column Shapes'", ours_shapes, float(props["Column Shapes"]),
            TOL_EXACT, "the report averages the same per-column scores"),
        Row(ds, cand, "column_pair_trends vs CorrelationSimilarity/ContingencySimilarity on the same pairs",
            ours_pairs, float(np.mean(used_scores)), TOL_EXACT,
            f"{len(used)} of {n_pairs} pairs, all rows (≤ 20k)"),
        Row(ds, cand, "column_pair_trends vs CorrelationSimilarity/ContingencySimilarity on ALL pairs",
            ours_pairs, float(np.mean(pair_scores)), TOL_EXACT if len(used) == n_pairs else None,
            "every pair scored" if len(used) == n_pairs else
            f"ours scores a seeded sample of {len(used)} of the {n_pairs} pairs (MAX_PAIRS) to bound the time on wide "
            "tables; the difference is that sample's error"),
        Row(ds, cand, "column_pair_trends vs QualityReport 'Column Pair Trends'", ours_pairs,
            float(props["Column Pair Trends"]), None,
            "the report bins a numeric column of a mixed pair into 10 equal-width bins of each table's OWN range "
            "(np.histogram_bin_edges on real and on synthetic separately) and leaves NaN in np.digitize's top bin; "
            "ours bins both tables on the real table's edges (ContingencySimilarity's continuous_column_names), "
            "so a synthetic value lands in the bin of the same real value range"),
    ]


# ------------------------------------------------------------------------------------------- privacy


def gower_dcr(query: pd.DataFrame, reference: pd.DataFrame, schema: Schema) -> np.ndarray:
    """SDMetrics' own DCR (dcr_utils.calculate_dcr) of each query row to the reference table."""
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return calculate_dcr(query[schema.names].reset_index(drop=True), reference[schema.names].reset_index(drop=True),
                             sdv_metadata(schema)).to_numpy()


def gower_dcr_numpy(query: pd.DataFrame, reference: pd.DataFrame, schema: Schema,
                    ranges: dict[str, float] | None = None, chunk: int = 256) -> np.ndarray:
    """SDMetrics' DCR formula (dcr_utils._process_dcr_chunk) in numpy: per numeric column
    min(|a-b| / range, 1) (range 0: 0/1 inequality; NaN vs value 1, NaN vs NaN 0), per categorical
    column 0/1 mismatch (NaN equals NaN), averaged over the columns, minimum over the reference.
    `ranges` defaults to the reference's own max - min, as SDMetrics does; pass the training table's
    ranges to put two references on one scale. Checked against calculate_dcr to 1e-12."""
    if ranges is None:
        ranges = {c: float(reference[c].max() - reference[c].min()) for c in schema.numeric}
    cols = []  # (query values, reference values, range or None for categorical)
    for c in schema.names:
        if c in schema.categorical:
            both = pd.concat([query[c], reference[c]], ignore_index=True).astype(object)
            codes = pd.factorize(both.where(both.notna(), "\x00nan").astype(str))[0]
            cols.append((codes[: len(query)], codes[len(query):], None))
        else:
            cols.append((query[c].to_numpy(dtype=float), reference[c].to_numpy(dtype=float), ranges[c]))
    out = np.empty(len(query))
    for q0 in range(0, len(query), chunk):
        total = np.zeros((min(chunk, len(query) - q0), len(reference)))
        for qv, rv, rng in cols:
            a, b = qv[q0:q0 + chunk, None], rv[None, :]
            if rng is None:
                total += a != b
                continue
            diff = np.abs(a - b)
            d = (diff > 0).astype(float) if rng == 0 else np.minimum(diff / rng, 1.0)
            na, nb = np.isnan(a), np.isnan(b)
            if na.any() or nb.any():
                d = np.where(na ^ nb, 1.0, np.where(na & nb, 0.0, d))
            total += d
        out[q0:q0 + chunk] = total.min(axis=1) / len(cols)
    return out


def our_dcr(query: pd.DataFrame, reference: pd.DataFrame, emb) -> np.ndarray:
    from synth_pipeline.neighbors import nearest

    return nearest(emb.transform(query), emb.transform(reference), k=1)[0][:, 0]


def train_subset(train: pd.DataFrame, holdout: pd.DataFrame, seed: int) -> np.ndarray:
    """The equal-size train subset dcr_metrics draws for dcr_share (same generator, same call)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(len(train), size=min(len(holdout), len(train)), replace=False))


def _share(to_train: np.ndarray, to_hold: np.ndarray, ties_half: bool = True) -> float:
    closer = (to_train < to_hold).sum() + (0.5 * (to_train == to_hold).sum() if ties_half else 0.0)
    return float(closer / len(to_train))


def dcr_rows(ds, cand, train, holdout, syn, schema, seed: int, n_rows: int) -> list[Row]:
    from sdmetrics.single_table import DCRBaselineProtection, DCROverfittingProtection

    from synth_pipeline.metrics.privacy import dcr_metrics, fit_embedding

    ours = {m.name: m for m in dcr_metrics(train, holdout, syn, schema, seed=seed)}
    share = ours["dcr_share"].value
    q = ours["memorisation_rate"].detail["dcr_quantiles"]
    rows_idx = np.sort(np.random.default_rng(seed).choice(len(syn), size=min(n_rows, len(syn)), replace=False))
    sample = syn.iloc[rows_idx].reset_index(drop=True)
    sub = train.iloc[train_subset(train, holdout, seed)]
    emb = fit_embedding(train, schema)

    # 1. SDMetrics' DCR formula (our numpy replica, checked against calculate_dcr on the sampled rows)
    #    with ONE set of ranges (the training table's) for both references, on every synthetic row,
    #    with our share definition (equal-size train subset, ties 1/2): only the distance differs.
    g_sub, g_hold = gower_dcr(sample, sub, schema), gower_dcr(sample, holdout, schema)
    replica_err = max(float(np.abs(gower_dcr_numpy(sample, sub, schema) - g_sub).max()),
                      float(np.abs(gower_dcr_numpy(sample, holdout, schema) - g_hold).max()))
    ranges = {c: float(train[c].max() - train[c].min()) for c in schema.numeric}
    gc_sub, gc_hold = gower_dcr_numpy(syn, sub, schema, ranges), gower_dcr_numpy(syn, holdout, schema, ranges)
    e_sub_all, e_hold_all = our_dcr(syn, sub, emb), our_dcr(syn, holdout, emb)
    same_side = float(np.mean(np.sign(e_sub_all - e_hold_all) == np.sign(gc_sub - gc_hold)))
    # 1b. SDMetrics' calculate_dcr as shipped (each reference normalised by its OWN ranges), same rows.
    e_sub, e_hold = our_dcr(sample, sub, emb), our_dcr(sample, holdout, emb)
    ours_same_rows, peer_same_rows = _share(e_sub, e_hold), _share(g_sub, g_hold)
    wide = {c: f"{(sub[c].max() - sub[c].min()) / (holdout[c].max() - holdout[c].min()):.2f}" for c in schema.numeric
            if holdout[c].max() > holdout[c].min()}

    # 2. DCROverfittingProtection as shipped: full train vs holdout, strict '<' (a tie counts as closer
    #    to the holdout), score = min(2 (1 - closer_to_training), 1).
    np.random.seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        over = DCROverfittingProtection.compute_breakdown(train[schema.names], sample[schema.names],
                                                          holdout[schema.names], sdv_metadata(schema), None)
    closer_peer = over["synthetic_data_percentages"]["closer_to_training"]
    e_train = our_dcr(sample, train, emb)
    closer_ours_full = _share(e_train, e_hold, ties_half=False)

    # 3. DCRBaselineProtection: median DCR synthetic->train / median DCR uniform-random->train. Our
    #    nearest quantity: median DCR synthetic->train / median DCR holdout->train (a real baseline).
    DCRBaselineProtection._seed = seed  # its random table is drawn from default_rng(_seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = DCRBaselineProtection.compute_breakdown(train[schema.names], sample[schema.names],
                                                       sdv_metadata(schema), None)
    ours_ratio = q["synthetic_to_train"]["p50"] / q["holdout_to_train"]["p50"] if q["holdout_to_train"]["p50"] else math.nan

    n = len(sample)
    return [
        Row(ds, cand, f"SDMetrics DCR formula, numpy replica vs calculate_dcr ({n} rows x train subset, holdout)",
            0.0, replica_err, TOL_EXACT, "max abs difference; the replica is what the next row uses on all rows"),
        Row(ds, cand, f"dcr_share (all {len(syn)} rows, equal-size train subset, ties 1/2): our distance vs SDMetrics' "
            "DCR with the training table's ranges for both references", share, _share(gc_sub, gc_hold), TOL_DCR_SHARE,
            f"same share, different distance (ours: Euclidean on robust-z numerics + one-hot/sqrt2 + NaN flags; "
            f"SDMetrics: mean over columns of min(|a-b|/range, 1) or 0/1 mismatch); the per-row verdicts agree for "
            f"{same_side:.0%} of rows"),
        Row(ds, cand, f"same share, {n} sampled rows: our distance vs SDMetrics calculate_dcr as shipped",
            ours_same_rows, peer_same_rows, None,
            f"calculate_dcr divides by the range of EACH reference table, so the train subset and the holdout are on "
            f"different scales; the holdout's ranges are narrower (train-subset/holdout range ratio {wide}), which "
            f"inflates distances to the holdout and pushes the share towards train. Ours embeds both with train's scaling"),
        Row(ds, cand, f"dcr_share (ours, all {len(syn)} rows) vs DCROverfittingProtection closer_to_training "
            f"({n} rows, full train vs holdout)", share, closer_peer, None,
            f"SDMetrics compares against the FULL train ({len(train)} rows) vs the holdout ({len(holdout)}) and "
            f"counts ties as closer to the holdout, so an ideal generator scores > 0.5 (more reference rows, closer "
            f"neighbours); ours draws a train subset of the holdout's size and counts ties 1/2, so 0.5 is ideal. "
            f"Our distance with SDMetrics' design on the same rows: {closer_ours_full:.3f}"),
        Row(ds, cand, "2 (1 - dcr_share) capped at 1 vs DCROverfittingProtection score",
            min(2 * (1 - share), 1.0), over["score"], None,
            "the peer's score is this transform of its closer_to_training; see the row above for why the shares differ"),
        Row(ds, cand, "median DCR syn->train / holdout->train (ours) vs DCRBaselineProtection score", ours_ratio,
            base["score"], None,
            f"the peer divides by the median DCR of UNIFORM-RANDOM rows (its baseline: {base['median_DCR_to_real_data']['random_data_baseline']:.3f}), "
            "which lie far from any real row, so a good generator scores well below 1; ours divides by a real holdout's "
            "median DCR, so a good generator scores ~1; both are 0 for a copy"),
    ]


def anonymeter_inputs(train, holdout, syn, schema):
    """The frames and aux columns our linkability() hands to anonymeter (same helpers, same order)."""
    from synth_pipeline.metrics.privacy import _for_anonymeter, split_aux_columns

    return _for_anonymeter((train, syn, holdout), schema, split_aux_columns(train, schema))


def link_neighbors(ours=None) -> int:
    """The neighbours our linkability() attacker looks at: its detail's, else its default (anonymeter's 1
    when it has no such parameter)."""
    import inspect

    from synth_pipeline.metrics.privacy import linkability

    if ours is not None and ours.detail.get("n_neighbors"):
        return int(ours.detail["n_neighbors"])
    p = inspect.signature(linkability).parameters.get("n_neighbors")
    return int(p.default) if p is not None else 1


def direct_linkability(ori, syn, control, aux, n_attacks: int, seed: int,
                       n_neighbors: int = 1, evaluated_with: int | None = None) -> tuple[float, tuple[float, float]]:
    """anonymeter's risk for an `n_neighbors` attacker; `evaluated_with`: the neighbours the one
    evaluation searched (our linkability() evaluates 5 and reads the chosen k from it)."""
    from anonymeter.evaluators import LinkabilityEvaluator

    ev = LinkabilityEvaluator(ori=ori, syn=syn, aux_cols=aux, n_attacks=n_attacks, control=control,
                              n_neighbors=evaluated_with or n_neighbors)
    np.random.seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev.evaluate(n_jobs=-1)
        risk = ev.results(n_neighbors=n_neighbors).risk()
    return float(risk.value), (float(risk.ci[0]), float(risk.ci[1]))


def linkability_rows(ds, cand, train, holdout, syn, schema, seed: int, n_attacks: int) -> list[Row]:
    from synth_pipeline.metrics.privacy import linkability, split_aux_columns

    ours = linkability(train, holdout, syn, schema, n_attacks=n_attacks, seed=seed)
    n = ours.detail["n_attacks"]
    (ori, s, control), aux = anonymeter_inputs(train, holdout, syn, schema)
    k = link_neighbors(ours)
    peer, peer_ci = direct_linkability(ori, s, control, aux, n, seed, k)
    rows = [Row(ds, cand, f"linkability risk (the gate's chosen {k}-neighbour attacker) vs LinkabilityEvaluator(ori=train, "
                f"syn, control=holdout, n_neighbors={k}), {n} attacks, np.random.seed(seed)", ours.value, peer, TOL_LINK,
                f"same frames, aux split and seed; CI ours {ours.ci[0]:.3f}-{ours.ci[1]:.3f}, peer {peer_ci[0]:.3f}-{peer_ci[1]:.3f}")]
    for j in (1, ours.detail.get("n_neighbors_max", k)):
        mine = ours.detail.get("per_neighbors", {}).get(str(j))
        if mine:
            v, _ = direct_linkability(ori, s, control, aux, n, seed, j)
            rows.append(Row(ds, cand, f"linkability risk, {j}-neighbour attacker (read from our one 5-neighbour evaluation) "
                            f"vs LinkabilityEvaluator(n_neighbors={j}) evaluated on its own", mine["risk"], v, TOL_LINK,
                            "same targets (same seed); the j nearest of 5 are the j nearest"))
    raw_aux = split_aux_columns(train, schema)
    nan_cols = [c for c in schema.features if train[c].isna().any() or holdout[c].isna().any() or syn[c].isna().any()]
    try:
        raw = direct_linkability(train[schema.features].reset_index(drop=True), syn[schema.features].reset_index(drop=True),
                                 holdout[schema.features].reset_index(drop=True), raw_aux, n, seed, k)[0]
    except Exception as e:  # noqa: BLE001 - report why the naive call fails
        raw, why = None, f"anonymeter fails on the raw tables: {type(e).__name__}: {str(e)[:80]}"
    else:
        why = (f"raw tables (NaN in {nan_cols}): anonymeter's Gower distance is NaN for NaN vs a value, so those "
               "targets get arbitrary neighbours; ours fills the train median and adds a 0/1 missing flag"
               if nan_cols else "no NaN in the features: the preparation changes nothing")
    rows.append(Row(ds, cand, "linkability risk vs LinkabilityEvaluator on the raw (unprepared) tables", ours.value, raw,
                    None if nan_cols or raw is None else TOL_LINK, why))
    return rows


def _anonymeter_risk(evaluator, seed: int, **evaluate_kw) -> float:
    import polars as pl

    np.random.seed(seed)
    pl.set_random_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluator.evaluate(**evaluate_kw)
        return float(evaluator.risk().value)


def attack_rows(ds, cand, train, holdout, syn, schema, seed: int) -> list[Row]:
    """Singling-out and attribute inference (synth_pipeline.metrics.attacks, when present) against
    anonymeter's evaluators called directly: with the very inputs our wrappers build (must be equal),
    and as anonymeter ships them (full train vs holdout, raw tables), explained where they differ."""
    try:
        from synth_pipeline.metrics import attacks
    except ImportError:
        return [Row(ds, cand, "singling-out / inference", None, None, None,
                    "not compared: synth_pipeline.metrics.attacks does not exist yet")]
    from anonymeter.evaluators import InferenceEvaluator, SinglingOutEvaluator

    from synth_pipeline.metrics.privacy import _for_anonymeter

    rows: list[Row] = []
    n_so = attacks.SINGLING_OUT_ATTACKS
    ours = attacks.singling_out(train, holdout, syn, schema, n_attacks=n_so, seed=seed)
    cols = schema.names
    attempts = attacks.SINGLING_OUT_ATTEMPTS_PER_ATTACK * n_so
    k = min(attacks.SINGLING_OUT_COLS, len(cols))
    ori, control = attacks._equal_size_samples(train[cols], holdout[cols], seed)
    synt = syn[cols].reset_index(drop=True)
    same = _anonymeter_risk(SinglingOutEvaluator(ori=ori, syn=synt, control=control, n_attacks=n_so, n_cols=k,
                                                 max_attempts=attempts, seed=seed), seed, mode="multivariate")
    short = ours.detail.get("note")
    rows.append(Row(ds, cand, f"singling_out risk vs SinglingOutEvaluator(multivariate, {n_so} attacks, {k} columns) on "
                    "the same equal-size samples and seed", ours.value, same, None if short else TOL_LINK,
                    short or "same inputs, same seeds (numpy and polars)"))
    shipped = _anonymeter_risk(SinglingOutEvaluator(ori=train[cols].reset_index(drop=True), syn=synt,
                                                    control=holdout[cols].reset_index(drop=True), n_attacks=n_so,
                                                    n_cols=k, max_attempts=attempts, seed=seed), seed, mode="multivariate")
    rows.append(Row(ds, cand, "singling_out risk vs SinglingOutEvaluator as shipped (full train vs holdout)", ours.value,
                    shipped, None,
                    f"anonymeter corrects the control's success for its smaller size ({len(holdout)} vs {len(train)} rows) "
                    "by a fitted size curve, which overshoots (a fresh real sample reads as a risk); ours subsamples train "
                    "to the holdout's size, so no correction is needed, at the price of diluting a copy's risk by that ratio"))

    secret = schema.target
    ours_inf = attacks.inference(train, holdout, syn, schema, n_attacks=500, seed=seed, secrets=[secret])[0]
    aux = [c for c in cols if c != secret]
    frames, (aux_cols, _) = _for_anonymeter((train, syn, holdout), schema, (aux, []))
    o, s_, c_ = (f.assign(**{secret: src[secret].to_numpy()}) for f, src in zip(frames, (train, syn, holdout)))
    regression = schema.column(secret).kind != "categorical"
    n = ours_inf.detail.get("n_attacks", min(500, len(o), len(c_)))
    direct = _anonymeter_risk(InferenceEvaluator(ori=o, syn=s_, control=c_, aux_cols=aux_cols, secret=secret,
                                                 regression=regression, n_attacks=n), seed, n_jobs=-1)
    rows.append(Row(ds, cand, f"inference[{secret}] risk vs InferenceEvaluator, same prepared frames, {n} attacks, seed",
                    ours_inf.value, direct, TOL_LINK, "same inputs and seeds"))
    rows += inference_gate_rows(ds, cand, train, holdout, syn, schema, seed)
    nan_cols = [c for c in aux if train[c].isna().any() or holdout[c].isna().any() or syn[c].isna().any()]
    try:
        raw = _anonymeter_risk(InferenceEvaluator(ori=train[cols].reset_index(drop=True), syn=synt,
                                                  control=holdout[cols].reset_index(drop=True), aux_cols=aux, secret=secret,
                                                  regression=regression, n_attacks=n), seed, n_jobs=-1)
        why = (f"raw tables (NaN in {nan_cols}): Gower NaN for NaN vs a value gives arbitrary neighbours; ours fills the "
               "median and adds a missing flag" if nan_cols else "no NaN in the auxiliary columns")
    except Exception as e:  # noqa: BLE001
        raw, why = None, f"anonymeter fails on the raw tables: {type(e).__name__}: {str(e)[:80]}"
    rows.append(Row(ds, cand, f"inference[{secret}] risk vs InferenceEvaluator on the raw (unprepared) tables",
                    ours_inf.value, raw, None if nan_cols or raw is None else TOL_LINK, why))
    return rows


def inference_gate_rows(ds, cand, train, holdout, syn, schema, seed: int) -> list[Row]:
    """What inference_gate judges (the lower end of each attacked column's risk CI) vs the lower end
    of InferenceEvaluator.risk() called directly on the same prepared frames, one row per column."""
    from anonymeter.evaluators import InferenceEvaluator

    from synth_pipeline.config import Thresholds
    from synth_pipeline.gates import inference_gate
    from synth_pipeline.metrics import attacks
    from synth_pipeline.metrics.privacy import _for_anonymeter

    gate = inference_gate(attacks.inference(train, holdout, syn, schema, seed=seed), Thresholds())
    rows = []
    for m in gate.metrics:
        secret = m.detail["secret"]
        aux = [c for c in schema.names if c != secret]
        frames, (aux_cols, _) = _for_anonymeter((train, syn, holdout), schema, (aux, []))
        o, s_, c_ = (f.assign(**{secret: src[secret].to_numpy()}) for f, src in zip(frames, (train, syn, holdout)))
        ev = InferenceEvaluator(ori=o, syn=s_, control=c_, aux_cols=aux_cols, secret=secret,
                                regression=m.detail["regression"], n_attacks=m.detail["n_attacks"])
        _anonymeter_risk(ev, seed, n_jobs=-1)
        rows.append(Row(ds, cand, f"inference_gate: lower end of inference[{secret}]'s 95% CI (threshold "
                        f"{m.threshold:g}, {'pass' if m.passed else 'refuse'}) vs InferenceEvaluator.risk().ci[0]",
                        m.ci[0], float(ev.risk().ci[0]), TOL_LINK, "same prepared frames, attacks and seeds"))
    return rows


# ------------------------------------------------------------------------------------------- utility


def independent_logreg_auroc(fit_on: pd.DataFrame, holdout: pd.DataFrame, schema: Schema, positive: str,
                             seed: int) -> float:
    """Logistic regression coded from scratch with pandas + scikit-learn: dummies for categories,
    numeric NaN -> fit-table median plus a 0/1 indicator, standardised, lbfgs; AUROC by sklearn."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    cat = [c for c in schema.categorical if c != schema.target]
    num = [c for c in schema.numeric if c != schema.target]

    def design(df: pd.DataFrame, ref: pd.DataFrame) -> pd.DataFrame:
        parts = []
        for c in num:
            med = ref[c].median()
            parts.append(df[c].fillna(med).rename(c))
            if ref[c].isna().any():
                parts.append(df[c].isna().astype(float).rename(f"{c}__nan"))
        x = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=df.index)
        for c in cat:
            levels = sorted(ref[c].dropna().astype(str).unique())
            for lv in levels:
                x[f"{c}={lv}"] = (df[c].astype(str) == lv).astype(float)
        return x

    xf, xh = design(fit_on, fit_on), design(holdout, fit_on)
    nums = [c for c in xf.columns if "=" not in c]
    mu, sd = xf[nums].mean(), xf[nums].std(ddof=0).replace(0, 1)
    xf[nums], xh[nums] = (xf[nums] - mu) / sd, (xh[nums] - mu) / sd
    yf = (fit_on[schema.target].astype(str) == positive).to_numpy()
    yh = (holdout[schema.target].astype(str) == positive).to_numpy()
    model = LogisticRegression(max_iter=5000, random_state=seed).fit(xf.to_numpy(), yf)
    return float(roc_auc_score(yh, model.predict_proba(xh.to_numpy())[:, 1]))


def scorer_agreement(seed: int = 0, n: int = 2000) -> float:
    """max |ours - sklearn| of AUROC and AP on tied, seeded scores (plain and bootstrap-weighted)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from synth_pipeline.metrics.utility import weighted_auroc_ap

    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    score = np.round(rng.random(n) + 0.4 * y, 2)  # many ties
    w = np.vstack([np.ones(n), rng.integers(0, 3, size=(4, n))]).astype(float)
    auroc, ap = weighted_auroc_ap(y, score, w)
    worst = 0.0
    for i in range(len(w)):
        worst = max(worst, abs(auroc[i] - roc_auc_score(y, score, sample_weight=w[i])),
                    abs(ap[i] - average_precision_score(y, score, sample_weight=w[i])))
    return worst


def utility_rows(ds, cand, train, holdout, syn, schema, seed: int) -> list[Row]:
    from synth_pipeline.metrics.utility import tstr

    ours = {m.name: m for m in tstr(train, holdout, syn, schema, seed=seed)}
    positive = ours["tstr_ratio"].detail["positive"]
    tstr_lr = independent_logreg_auroc(syn, holdout, schema, positive, seed)
    trtr_lr = independent_logreg_auroc(train, holdout, schema, positive, seed)
    rows = [
        Row(ds, cand, "TSTR AUROC [logreg] vs independent pandas+sklearn logistic regression",
            ours["tstr_auroc[logreg]"].value, tstr_lr, TOL_TSTR,
            "same model and data, preprocessing coded independently (column order and lbfgs stopping differ)"),
        Row(ds, cand, "TRTR AUROC [logreg] vs independent pandas+sklearn logistic regression",
            ours["trtr_auroc[logreg]"].value, trtr_lr, TOL_TSTR, "as above"),
    ]
    try:
        from sdmetrics.single_table import BinaryLogisticRegression

        md = sdv_metadata(schema)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f1_tstr = BinaryLogisticRegression.compute(holdout[schema.names], syn[schema.names], md, target=schema.target)
            f1_trtr = BinaryLogisticRegression.compute(holdout[schema.names], train[schema.names], md, target=schema.target)
        rows.append(Row(ds, cand, "auroc_ratio[logreg] vs SDMetrics BinaryLogisticRegression F1 TSTR/TRTR",
                        ours["auroc_ratio[logreg]"].value, f1_tstr / f1_trtr if f1_trtr else math.nan, None,
                        f"SDMetrics' ML efficacy scores hard labels by F1 of the label sklearn calls positive "
                        f"(F1 TSTR {f1_tstr:.3f}, TRTR {f1_trtr:.3f}, 0.5 threshold, class_weight balanced, RobustScaler); "
                        "ours ranks probabilities (AUROC), threshold-free"))
    except Exception as e:  # noqa: BLE001
        rows.append(Row(ds, cand, "SDMetrics BinaryLogisticRegression", None, None, None, f"not computed: {e}"))
    return rows


# ------------------------------------------------------------------------------------------- driver


def compare(ds: str, cand: str, train, holdout, syn, schema, *, seed: int = 0, dcr_rows_n: int = 500,
            n_attacks: int = 1000) -> list[Row]:
    return [
        *fidelity_rows(ds, cand, train, syn, schema, seed),
        *dcr_rows(ds, cand, train, holdout, syn, schema, seed, dcr_rows_n),
        *linkability_rows(ds, cand, train, holdout, syn, schema, seed, n_attacks),
        *attack_rows(ds, cand, train, holdout, syn, schema, seed),
        *utility_rows(ds, cand, train, holdout, syn, schema, seed),
    ]


def _fmt(v) -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def markdown(rows: list[Row]) -> str:
    lines = ["| dataset | candidate | metric | ours | peer | abs. difference | verdict |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.dataset} | {r.candidate} | {r.metric} | {_fmt(r.ours)} | {_fmt(r.peer)} | {_fmt(r.diff)} | "
                     f"{r.verdict} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["flchain", "actg175"])
    p.add_argument("--candidates", nargs="+", default=["gaussian_copula", "copy"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dcr-rows", type=int, default=500)
    p.add_argument("--attacks", type=int, default=1000)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "AGREEMENT.md")
    a = p.parse_args()
    import sdmetrics
    from importlib.metadata import version

    rows: list[Row] = []
    start = time.perf_counter()
    scorer = scorer_agreement(a.seed)
    rows.append(Row("(synthetic scores)", "—", "AUROC and AUPRC scorer (weighted_auroc_ap) vs sklearn roc_auc_score / "
                    "average_precision_score, tied scores, bootstrap weights", 0.0, scorer, TOL_SCORER,
                    "max abs difference over 5 weightings"))
    for ds in a.datasets:
        train, holdout, schema = load(ds, a.seed)
        for cand in a.candidates:
            t = time.perf_counter()
            syn = candidate(cand, train, schema, a.seed)
            rows += compare(ds, cand, train, holdout, syn, schema, seed=a.seed, dcr_rows_n=a.dcr_rows, n_attacks=a.attacks)
            print(f"# {ds} / {cand}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    table = markdown(rows)
    comparable = [r for r in rows if r.tol is not None]
    summary = (f"{sum(bool(r.agrees) for r in comparable)} of {len(comparable)} comparable quantities agree within their "
               f"tolerance; {len(rows) - len(comparable)} rows compare different quantities (explained in the verdict "
               "and in docs/metrics.md).")
    header = (f"# Agreement with peers\n\nGenerated by `benchmarks/agreement.py` (seed {a.seed}, {a.attacks} linkability "
              f"attacks, {a.dcr_rows} synthetic rows for SDMetrics' DCR) with sdmetrics {sdmetrics.__version__}, "
              f"anonymeter {version('anonymeter')}; {time.perf_counter() - start:.0f} s.\n\n{summary}\n\n")
    print(table)
    print()
    print(summary)
    a.out.write_text(header + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
