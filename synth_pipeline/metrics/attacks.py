"""anonymeter singling-out and attribute-inference attacks for the privacy report (no gate reads them).

Both report anonymeter's baseline-corrected risk, (attack rate - control rate) / (1 - control rate),
with its 95% CI: the attack on the training records (ori) is judged against the same attack on the
holdout (control), real records the generator never saw, so what fresh data would reveal anyway
(population-level structure) is not counted as a leak. The random-guess baseline rate is recorded in
`detail` beside the attack and control rates. Every attack is seeded, so the same inputs and seed give
the same numbers, in this process or as a task on a dask worker (synth_pipeline.cluster): singling-out
through anonymeter's own seed and polars' (set right before it runs); inference draws its targets from a
private RNG (`_inference_targets`), because numpy's global one is shared with whatever else runs in the
process. A metric that cannot be computed comes back as `missing()` with its reason, never dropped.
"""

import logging
import re
import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd

from synth_pipeline.cluster import map_tasks
from synth_pipeline.hashing import row_hashes
from synth_pipeline.metrics.base import MetricResult, missing
from synth_pipeline.metrics.privacy import _for_anonymeter, _table_problem
from synth_pipeline.schema import Schema

SINGLING_OUT_COMPARED = "synthetic-derived queries single out in train vs holdout (control), equal-size samples"
INFERENCE_COMPARED = "secret inferred from synthetic for train (ori) vs holdout (control) records"
SINGLING_OUT_ATTACKS = 300
SINGLING_OUT_COLS = 3
# Query-generation attempts allowed per requested attack. On FLCHAIN about 1 in 130 random 3-column
# queries drawn from a train-sized table singles out exactly one row (0.76%), so 200 per attack
# reaches the requested count there; it bounds the run time on tables where singling out is rarer.
SINGLING_OUT_ATTEMPTS_PER_ATTACK = 200
# Rows per side (train and holdout, after equalising) above which singling-out runs on a coordinated
# sample (`_coordinated_sample`): more rows and 3-column queries rarely single out one synthetic row,
# so the attempt cap leaves the attack without queries (26 of 300 at 200k rows). 3,000 keeps every
# bundled table whole at the default holdout fraction (FLCHAIN: 2,363); benchmarks/PRIVACY_GATES.md.
SINGLING_OUT_ROWS = 3000
INFERENCE_TOLERANCE = 0.05  # anonymeter's: a numeric guess within 5% (relative) of the secret counts
_GUESS_PAIRS = (1000, 2000)  # random-guess baseline: targets x synthetic rows compared
_SHORTFALL = re.compile(r"could generate only (\d+) singling out queries")
_BASELINE_WARNING = "Attack is as good or worse as baseline"


@contextmanager
def _seeded(seed: int):
    """anonymeter samples targets and guesses with numpy's global RNG and subsamples with polars'."""
    import polars as pl

    np.random.seed(seed)
    pl.set_random_seed(seed)
    with warnings.catch_warnings():
        # anonymeter warns when an (unseeded-by-design) random-guess baseline matches the attack; the
        # risk reported here is corrected by the control attack instead, so the warning is noise.
        warnings.filterwarnings("ignore", message=_BASELINE_WARNING)
        yield


class _QueryShortfall(logging.Handler):
    """Catches anonymeter's warning that it generated fewer singling-out queries than requested (the
    count is not exposed otherwise): the rates are then taken over the queries actually made."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.generated: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        m = _SHORTFALL.search(record.getMessage())
        if m:
            self.generated = int(m.group(1))


def _equal_size_samples(train: pd.DataFrame, holdout: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Distinct rows of train and holdout, the larger subsampled (seeded) to the smaller's size.

    Whether a query singles out depends on the table's size (a query matching one row in 1,000 may
    match five in 5,000). anonymeter's own remedy, a fit of the control's success against its size
    extrapolated to the train size, overshoots on FLCHAIN: a fresh real sample, independent of train,
    read as a risk of 0.14-0.19 (CI excluding 0). On equal sizes no correction is needed and a fresh
    sample reads ≈ 0. The price: a query that singles out one train record succeeds only when that
    record is in the sample, so for a copy of train the risk reads about (sample / train size) x its
    full value (0.29 on FLCHAIN, train 5,511 rows sampled to the holdout's 2,363). anonymeter drops
    duplicate rows itself; dropping them first keeps its two tables the same size."""
    ori, control = train.drop_duplicates(), holdout.drop_duplicates()
    m = min(len(ori), len(control))
    rng = np.random.default_rng(seed)

    def sample(df: pd.DataFrame) -> pd.DataFrame:
        if len(df) == m:
            return df.reset_index(drop=True)
        return df.iloc[np.sort(rng.choice(len(df), size=m, replace=False))].reset_index(drop=True)

    return sample(ori), sample(control)


def _lowest_hashes(df: pd.DataFrame, k: int, salt: np.uint64) -> pd.DataFrame:
    """The k rows of `df` whose salted row hash (hashing.row_hashes) is smallest, in table order."""
    h = row_hashes(df, list(df.columns)) ^ salt
    keep = np.sort(np.argpartition(h, k - 1)[:k]) if k < len(df) else np.arange(len(df))
    return df.iloc[keep].reset_index(drop=True)


def _coordinated_sample(
    ori: pd.DataFrame, control: pd.DataFrame, syn: pd.DataFrame, rows: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """The three tables shrunk by one factor, rows / len(ori), each to the rows with the smallest
    seeded-salted row hashes (bottom-k sampling), so equal rows are kept or dropped together across
    tables: a synthetic row that copies a training row stays exactly when the training row does, and
    the attack sees a copy as it would at full size, while queries built on a few thousand synthetic
    rows still single one out. `ori` and `control` stay equal in size."""
    salt = np.random.SeedSequence([seed, 0x736F]).generate_state(1, dtype=np.uint64)[0]
    n_syn = max(1, round(len(syn) * rows / len(ori)))
    shrunk = (_lowest_hashes(ori, rows, salt), _lowest_hashes(control, rows, salt), _lowest_hashes(syn, n_syn, salt))
    record = {"rows_per_side_before": len(ori), "synthetic_rows_before": len(syn), "rows_per_side": rows,
              "synthetic_rows": n_syn, "seed": seed,
              "rule": f"above {rows} rows per side, train, holdout and synthetic are shrunk by one factor to the "
                      "rows with the smallest seeded row hashes (copies stay with their originals)"}
    return (*shrunk, record)


def _random_query_successes(syn: pd.DataFrame, ori: pd.DataFrame, n_queries: int, n_cols: int, seed: int) -> int:
    """anonymeter's random-guess baseline for singling out, made reproducible: `n_queries` random
    `n_cols`-column predicates built by anonymeter's own `_random_query`, counted where they match
    exactly one `ori` row. anonymeter draws the values from polars' unordered `unique()`, whose
    order changes from call to call, so its baseline differs between identically seeded runs; here
    the candidate values are sorted first."""
    import polars as pl
    from anonymeter.evaluators.singling_out_evaluator import (
        _convert_polars_dtype,
        _evaluate_queries_and_return_successful,
        _random_query,
    )

    syn_pl, ori_pl = pl.DataFrame(syn), pl.DataFrame(ori)
    values = {
        c: sorted(syn_pl[c].unique().to_list(), key=lambda v: (v is None, 0 if v is None else v)) for c in syn_pl.columns
    }
    types = {c: _convert_polars_dtype(syn_pl[c].dtype) for c in syn_pl.columns}
    rng = np.random.default_rng([seed, 1])
    queries = [
        _random_query(unique_values=values, cols=rng.choice(syn_pl.columns, size=n_cols, replace=False).tolist(),
                      column_types=types, rng=rng)
        for _ in range(n_queries)
    ]
    return len(_evaluate_queries_and_return_successful(df=ori_pl, queries=queries))


def singling_out(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Schema,
    *,
    n_attacks: int = SINGLING_OUT_ATTACKS,
    n_cols: int = SINGLING_OUT_COLS,
    seed: int = 0,
    max_attempts: int | None = None,
) -> MetricResult:
    """anonymeter multivariate singling-out: predicates on `n_cols` columns (3, or every column of a
    narrower table) that match exactly one synthetic row are claimed to single out one real person;
    value and 95% CI are the excess success on train over the holdout (see `_equal_size_samples`).

    Query generation is capped at `max_attempts` (default 200 per attack): when fewer than
    `n_attacks` queries single out in the synthetic table, the rates are over the queries made and
    `detail` says so; none at all is a missing() result. Time is set by the attempts (polars
    evaluates them in batches of 1,000; about 1 in 130 singles out a row of a FLCHAIN-sized table):
    300 attacks (the default) took 13-14 s against a 5,511-row synthetic table (a copy of train, a
    Gaussian copula sample) and 5 s against a fresh 1,182-row sample, on a loaded 2-core machine;
    500 attacks took 19-27 s there, hence 300 (95% CI half-width about ±0.07 at a risk of 0).

    Large tables: above SINGLING_OUT_ROWS rows per side the attack runs on a coordinated sample of
    that many (`_coordinated_sample`, recorded in `detail["coordinated_sample"]`), so its time and
    its query yield do not depend on the table size."""
    from anonymeter.evaluators import SinglingOutEvaluator  # here: importing it loads numba (~1 s)
    from anonymeter.stats.confidence import EvaluationResults

    name = "singling_out"
    problem = _table_problem(train, holdout, synthetic, schema)
    if problem:
        return missing(name, problem, SINGLING_OUT_COMPARED)
    if n_attacks < 1:
        return missing(name, f"n_attacks={n_attacks}; at least 1 is needed", SINGLING_OUT_COMPARED)
    cols = schema.names
    k = min(n_cols, len(cols))
    attempts = max_attempts if max_attempts is not None else SINGLING_OUT_ATTEMPTS_PER_ATTACK * n_attacks
    ori, control = _equal_size_samples(train[cols], holdout[cols], seed)
    syn = synthetic[cols].reset_index(drop=True)
    shrunk = None
    if len(ori) > SINGLING_OUT_ROWS:
        ori, control, syn, shrunk = _coordinated_sample(ori, control, syn, SINGLING_OUT_ROWS, seed)

    log = logging.getLogger("anonymeter.evaluators.singling_out_evaluator")
    catcher = _QueryShortfall()
    log.addHandler(catcher)
    try:
        evaluator = SinglingOutEvaluator(
            ori=ori, syn=syn, control=control, n_attacks=n_attacks, n_cols=k, max_attempts=attempts, seed=seed
        )
        with _seeded(seed):
            evaluator.evaluate(mode="multivariate")
            raw = evaluator.results()
            n_queries = n_attacks if catcher.generated is None else min(catcher.generated, n_attacks)
            if n_queries == 0:
                return missing(
                    name,
                    f"no {k}-column query singles out a synthetic row in {attempts} attempts "
                    "(too few rows, or too few distinct values, to attack)",
                    SINGLING_OUT_COMPARED,
                )
            # Rates over the queries actually made; the random baseline makes n_attacks (its own,
            # reproducible run replaces anonymeter's: see _random_query_successes).
            results = EvaluationResults(
                n_attacks=(n_queries, n_attacks, n_queries),
                n_success=raw.n_success,
                n_baseline=_random_query_successes(syn.drop_duplicates(), ori, n_attacks, k, seed),
                n_control=raw.n_control,
            )
            risk = results.risk()
    except Exception as e:  # noqa: BLE001 - a report metric that fails says why instead of sinking the report
        return missing(name, f"anonymeter failed: {type(e).__name__}: {e}", SINGLING_OUT_COMPARED)
    finally:
        log.removeHandler(catcher)
    detail = {
        "attack_rate": float(results.attack_rate.value),
        "control_rate": float(results.control_rate.value),
        "baseline_rate": float(results.baseline_rate.value),
        "n_success": int(results.n_success),
        "n_control_success": int(results.n_control),
        "n_baseline_success": int(results.n_baseline),
        "n_attacks_requested": n_attacks,
        "n_attacks": n_queries,
        "n_cols": k,
        "mode": "multivariate",
        "rows_per_side": len(ori),
        "max_attempts": attempts,
        "seed": seed,
    }
    if shrunk is not None:
        detail["coordinated_sample"] = shrunk
    if n_queries < n_attacks:
        detail["note"] = (
            f"only {n_queries} of {n_attacks} queries single out a synthetic row within {attempts} "
            "attempts; rates are over the queries made"
        )
    return MetricResult(
        name=name, value=float(risk.value), ci=(float(risk.ci[0]), float(risk.ci[1])),
        compared=SINGLING_OUT_COMPARED, detail=detail,
    )


def default_secrets(schema: Schema, sensitive: tuple[str, ...] = ()) -> list[str]:
    """The columns attribute inference attacks: the target, the columns the schema marks sensitive
    (a `sensitive` attribute, when the schema has one) and any `sensitive` passed in, in that order."""
    marked = tuple(getattr(schema, "sensitive", ()) or ())
    out: list[str] = []
    for c in (schema.target, *marked, *sensitive):
        if c not in out:
            out.append(c)
    return out


def _random_guess_rate(target: pd.Series, syn: pd.Series, regression: bool, seed: int) -> float:
    """The chance that the secret of a random synthetic row counts as a correct guess for a random
    target, by anonymeter's own rule (evaluate_inference_guesses), over every pair of up to 1,000
    targets and 2,000 synthetic rows (seeded). Computed here because anonymeter 1.1.0's naive
    baseline re-indexes its guesses onto the targets' row labels, so it compares unrelated rows or
    NaN (a binary secret's "baseline" came out at 0.05-0.08 on FLCHAIN)."""
    from anonymeter.evaluators.inference_evaluator import evaluate_inference_guesses

    rng = np.random.default_rng(seed)
    t = target.to_numpy()[rng.permutation(len(target))[: _GUESS_PAIRS[0]]]
    g = syn.to_numpy()[rng.permutation(len(syn))[: _GUESS_PAIRS[1]]]
    index = pd.RangeIndex(len(t) * len(g))
    hits = evaluate_inference_guesses(
        guesses=pd.Series(np.tile(g, len(t)), index=index),
        secrets=pd.Series(np.repeat(t, len(g)), index=index),
        regression=regression,
        tolerance=INFERENCE_TOLERANCE,
    )
    return float(np.mean(hits))


def _inference_targets(n_ori: int, n_syn: int, n_control: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the `n` train (ori) and `n` holdout (control) records one inference attack targets.

    anonymeter draws them with pandas' `.sample()` from numpy's global RNG, which any other code in
    the process also draws from: on a dask worker, dask's `sizeof` of an object-dtype DataFrame
    (`np.random.choice`) runs in the worker's event-loop thread while a task runs, and moved the
    control targets (benchmarks/SCALE.md, the inference attacks on a Dask cluster). These are the
    same rows anonymeter draws after `np.random.seed(seed)` in an undisturbed process (one
    `RandomState.permutation` per `.sample()` in `InferenceEvaluator.evaluate`: baseline targets,
    baseline guesses, train targets, control targets), drawn from a private RandomState, so the
    numbers match those measured before and do not depend on where the attack runs. Handed to
    anonymeter as ori and control with `n_attacks=n`, its own draw only reorders them, and the
    success counts do not depend on order."""
    rs = np.random.RandomState(seed)
    rs.permutation(n_ori)  # anonymeter's naive baseline (targets, then guesses); _random_guess_rate replaces it
    rs.permutation(n_syn)
    return rs.permutation(n_ori)[:n], rs.permutation(n_control)[:n]


def _inference_one(
    train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, secret: str,
    *, n_attacks: int, seed: int,
) -> MetricResult:
    from anonymeter.evaluators import InferenceEvaluator

    name = f"inference[{secret}]"
    aux = [c for c in schema.names if c != secret]
    if not aux:
        return missing(name, "no other column to infer it from", INFERENCE_COMPARED)
    if train[secret].nunique(dropna=False) < 2:
        return missing(name, f"'{secret}' takes a single value in train: nothing to infer", INFERENCE_COMPARED)
    # Auxiliary columns made safe for anonymeter's Gower distance (numeric NaN -> median + a missing
    # flag, categorical NaN -> its own level); the secret stays as is (anonymeter counts NaN == NaN).
    frames, (aux_cols, _) = _for_anonymeter((train, synthetic, holdout), schema, (aux, []))
    ori, syn, control = (f.assign(**{secret: src[secret].to_numpy()}) for f, src in zip(frames, (train, synthetic, holdout)))
    regression = schema.column(secret).kind != "categorical"
    n = min(n_attacks, len(ori), len(control))  # the same number on both sides, so the rates compare
    ori_rows, control_rows = _inference_targets(len(ori), len(syn), len(control), n, seed)
    try:
        evaluator = InferenceEvaluator(
            ori=ori.iloc[ori_rows], syn=syn, control=control.iloc[control_rows], aux_cols=aux_cols, secret=secret,
            regression=regression, n_attacks=n,
        )
        with _seeded(seed):
            evaluator.evaluate(n_jobs=-1)
            results = evaluator.results()
            risk = results.risk()
        baseline = _random_guess_rate(train[secret], synthetic[secret], regression, seed)
    except Exception as e:  # noqa: BLE001 - a report metric that fails says why instead of sinking the report
        return missing(name, f"anonymeter failed: {type(e).__name__}: {e}", INFERENCE_COMPARED)
    return MetricResult(
        name=name, value=float(risk.value), ci=(float(risk.ci[0]), float(risk.ci[1])),
        compared=INFERENCE_COMPARED,
        detail={
            "attack_rate": float(results.attack_rate.value),
            "control_rate": float(results.control_rate.value),
            "baseline_rate": baseline,
            "n_success": int(results.n_success),
            "n_control_success": int(results.n_control),
            "n_attacks": n,
            "secret": secret,
            "regression": regression,
            "tolerance": INFERENCE_TOLERANCE if regression else 0.0,
            "aux_cols": list(aux_cols),
            "seed": seed,
            "holdout_rows": len(holdout),
            "table_rows": len(train) + len(holdout),
            "max_attacks": min(n_attacks, (len(train) + len(holdout)) // 2),
        },
    )


def inference(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Schema,
    *,
    n_attacks: int = 500,
    seed: int = 0,
    secrets: list[str] | tuple[str, ...] | None = None,
    sensitive: tuple[str, ...] = (),
) -> list[MetricResult]:
    """anonymeter attribute inference, one attack per secret column: the attacker knows every other
    column of a record and guesses the secret as its nearest synthetic neighbour's (Gower distance).
    A categorical secret must be guessed exactly; a numeric one within 5% (relative). Value and 95% CI
    are the excess success on train over the holdout; `detail` has the attack and control rates and
    the random-guess baseline rate (see `_random_guess_rate`). Run time: about 2-4 s per secret on
    FLCHAIN, plus a one-off ~20 s numba compile of anonymeter's neighbour search per process (shared
    with linkability).

    Secrets: `secrets` when given, else `default_secrets(schema, sensitive)` — the target, the
    columns the schema marks sensitive, and `sensitive` (pass e.g. `sensitive=tuple(schema.names)`
    to attack every column). Returns `inference[<col>]` per secret,
    then `inference_max`, the worst computed column (missing when none could be computed). With a
    dask scheduler configured (synth_pipeline.cluster) each column's attack is a task on the cluster,
    with the same result as here."""
    cols = list(secrets) if secrets is not None else default_secrets(schema, sensitive)
    problem = _table_problem(train, holdout, synthetic, schema)
    unknown = [c for c in cols if c not in schema.names]
    runnable = [c for c in cols if not problem and c not in unknown and n_attacks >= 1]  # one task per column
    attacked = dict(zip(runnable, map_tasks(_inference_one, [(train, holdout, synthetic, schema, c) for c in runnable],
                                            n_attacks=n_attacks, seed=seed)))
    out: list[MetricResult] = []
    for c in cols:
        if problem:
            out.append(missing(f"inference[{c}]", problem, INFERENCE_COMPARED))
        elif c in unknown:
            out.append(missing(f"inference[{c}]", f"'{c}' is not a schema column", INFERENCE_COMPARED))
        elif n_attacks < 1:
            out.append(missing(f"inference[{c}]", f"n_attacks={n_attacks}; at least 1 is needed", INFERENCE_COMPARED))
        else:
            out.append(attacked[c])
    return [*out, _worst(out)]


def _worst(results: list[MetricResult]) -> MetricResult:
    name = "inference_max"
    done = [m for m in results if m.computed]
    not_computed = {m.name: m.error for m in results if not m.computed}
    if not done:
        reason = "; ".join(f"{k}: {v}" for k, v in not_computed.items()) or "no secret column to attack"
        return missing(name, f"no inference attack could be computed ({reason})", INFERENCE_COMPARED)
    worst = max(done, key=lambda m: (m.value, m.ci[1] if m.ci else 0.0))
    return MetricResult(
        name=name, value=worst.value, ci=worst.ci, compared=INFERENCE_COMPARED,
        detail={
            "column": worst.detail["secret"],
            "per_column": {m.detail["secret"]: m.value for m in done},
            "not_computed": not_computed,
        },
    )
