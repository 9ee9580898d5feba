"""Copies judged by what they reveal (DESIGN.md, Gate).

A synthetic row equal to a training row is a leak only when few patients share that combination of
values: a copy of a combination held by fewer than k training rows points at those patients, a copy
of a common one (k or more) points at nobody. So:
- `filter_rare_copies` replaces every copy of a rare training combination by rows the fitted
  generator draws anew (derived seeds, of the same class, a bounded number of rounds) and removes
  what is still a rare copy after that; the pipeline applies it to every generator's candidate
  before any gate sees it.
- With a `near_copies.DistanceFloor` (RunConfig.near_copy_quantile > 0) the same loop also redraws
  every row closer to a training row than the floor τ: a near copy, which hashing cannot see.
- `cohort_change` checks that the filter did not bend the cohort: each column's distribution after
  the filter is compared with before (KS distance for numbers, missing as its own highest value;
  total variation for categories), against the release's own sampling noise: seeded bootstrap
  samples of the same size drawn from the unfiltered candidate. One max-statistic over the columns,
  each scaled by its own bootstrap mean, keeps the chance of refusing a filter whose change is no
  larger than drawing another sample at `CHANGE_ALPHA` for the whole table. (Not "as many rows
  removed at random": rare combinations sit in the tails by construction, so against that null any
  filter of them is detectably non-random, however few rows it changes; README, Copies.)
- Common copies are compared with the holdout's own match rate in metrics.privacy (`exact_copies`).
Rows are matched with hashing.row_hashes, the one row-matching rule.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from synth_pipeline.hashing import row_hashes
from synth_pipeline.schema import Schema, conform

if TYPE_CHECKING:  # near_copies imports metrics.privacy, which imports this module
    from synth_pipeline.near_copies import DistanceFloor

REDRAW_ROUNDS = 3
CHANGE_TRIALS = 1000
CHANGE_ALPHA = 0.01

# (number of rows, seed, class label of each row or None) -> rows from the fitted generator
Redraw = Callable[[int, int, np.ndarray | None], pd.DataFrame]


def training_shares(rows: pd.DataFrame, *, train: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """For each row, how many training rows equal it on every column (0: it copies nobody)."""
    counts = pd.Series(row_hashes(train, columns)).value_counts()
    return pd.Series(row_hashes(rows, columns)).map(counts).fillna(0).astype(np.int64).to_numpy()


def rare_copy_mask(rows: pd.DataFrame, *, train: pd.DataFrame, columns: list[str], k: int) -> np.ndarray:
    """True where a row equals a training combination shared by fewer than k training rows."""
    shares = training_shares(rows, train=train, columns=columns)
    return (shares > 0) & (shares < k)


@dataclass(frozen=True)
class ColumnChange:
    column: str
    statistic: str  # "ks" (numbers) or "tv" (categories)
    value: float
    bound: float
    bent: bool


@dataclass(frozen=True)
class CohortChange:
    """The filter's effect on each column, against `trials` bootstrap samples of the same size."""

    changed_rows: int
    added_rows: int
    trials: int
    alpha: float
    seed: int
    columns: tuple[ColumnChange, ...]
    target: str | None
    target_share_before: dict[str, float]
    target_share_after: dict[str, float]

    @property
    def bent(self) -> tuple[str, ...]:
        return tuple(c.column for c in self.columns if c.bent)

    @property
    def passed(self) -> bool:
        return not self.bent

    def sentence(self, rows_before: int, flagged: str = "copied rare training rows") -> str:
        if self.passed:
            return (f"the copy filter changed {self.changed_rows} of {rows_before} rows without bending the cohort "
                    f"(every column within the sampling noise of a release this size, {1 - self.alpha:.0%} bound).")
        worst = ", ".join(f"{c.column} ({c.statistic.upper()} {c.value:.3f} > {c.bound:.3f})"
                          for c in self.columns if c.bent)
        return (f"the copy filter bent the cohort: replacing or removing {self.changed_rows} of {rows_before} rows "
                f"that {flagged} moved {worst} beyond the sampling noise of a release this size "
                f"({1 - self.alpha:.0%} bound, {self.trials} seeded bootstrap samples): too much of the cohort sits "
                f"in combinations fewer than k patients share; coarsen or pool those columns.")

    def to_dict(self) -> dict:
        return {**asdict(self), "bent": list(self.bent), "passed": self.passed}


@dataclass(frozen=True)
class CopyFilterResult:
    """What `filter_rare_copies` did: rare copies and near copies (closer to a training row than
    `near_copy_distance`, the `near_copy_quantile` of train's leave-one-out nearest-neighbour
    distances; 0 and 0.0 when no floor was set) found in the generator's candidate, how many of the
    flagged rows (either kind) were replaced by redrawn rows and how many removed, and the cohort check."""

    k: int
    rows_before: int
    rows_after: int
    rare_copies: int
    redrawn: int
    removed: int
    rounds: int
    redraw_seeds: tuple[int, ...]
    change: CohortChange
    near_copies: int = 0
    near_copy_quantile: float = 0.0
    near_copy_distance: float = 0.0

    @property
    def passed(self) -> bool:
        return self.rows_after > 0 and self.change.passed

    def reason(self) -> str:
        if self.rows_after == 0:
            near = (f" or lay closer to a training row than {self.near_copy_distance:.3g} (the "
                    f"{self.near_copy_quantile:g} quantile of the training rows' distances to each other)"
                    if self.near_copy_quantile > 0 else "")
            return (f"the copy filter removed all {self.rows_before} candidate rows: each copied a training row "
                    f"shared by fewer than {self.k} patients{near} and {self.rounds} redraw rounds found no other; "
                    f"the generator reproduces training rows.")
        return self.change.sentence(self.rows_before, "copied rare training rows" + (
            f" or lay closer to one than {self.near_copy_distance:.3g}" if self.near_copy_quantile > 0 else ""))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["change"] = self.change.to_dict()
        d["redraw_seeds"] = list(self.redraw_seeds)
        return {**d, "passed": self.passed, "reason": self.reason()}


def redraw_seed(seed: int, round_: int) -> int:
    """The seed of redraw round `round_` (1, 2, ...), derived from the run seed."""
    return int(np.random.SeedSequence([seed, round_, 0x636F7079]).generate_state(1)[0])


def filter_rare_copies(
    candidate: pd.DataFrame, *, train: pd.DataFrame, schema: Schema, k: int, redraw: Redraw, seed: int,
    rounds: int = REDRAW_ROUNDS, near: "DistanceFloor | None" = None,
) -> tuple[pd.DataFrame, CopyFilterResult]:
    """The candidate with no copy of a rare training combination (and, with `near`, no row closer to
    a training row than its floor), and what it took. Each round asks `redraw` for one new row per
    remaining flagged row (its class when the target is categorical) and keeps those that are not
    flagged themselves; after `rounds` rounds the rest are removed."""
    columns = list(schema.names)

    def rare(rows: pd.DataFrame) -> np.ndarray:
        return rare_copy_mask(rows, train=train, columns=columns, k=k)

    def flag(rows: pd.DataFrame) -> np.ndarray:
        return rare(rows) | near.mask(rows) if near is not None else rare(rows)

    before = conform(candidate, schema)
    out = before.copy()
    is_rare = rare(out)
    is_near = near.mask(out) if near is not None else np.zeros(len(out), dtype=bool)
    flagged = np.flatnonzero(is_rare | is_near)
    found = len(flagged)
    labelled = schema.target is not None and schema.column(schema.target).kind == "categorical"
    redrawn, seeds = 0, []
    for r in range(1, rounds + 1):
        if len(flagged) == 0:
            break
        s = redraw_seed(seed, r)
        seeds.append(s)
        labels = out[schema.target].to_numpy(dtype=object)[flagged] if labelled else None
        fresh = conform(redraw(len(flagged), s, labels), schema)
        ok = ~flag(fresh)
        out.iloc[flagged[ok]] = fresh.iloc[np.flatnonzero(ok)].to_numpy(dtype=object)
        out = conform(out, schema)
        redrawn += int(ok.sum())
        flagged = flagged[~ok]
    keep = np.ones(len(out), dtype=bool)
    keep[flagged] = False
    after = out[keep].reset_index(drop=True)
    change = cohort_change(before, after, schema=schema, changed=found, added=redrawn, seed=seed)
    result = CopyFilterResult(k=k, rows_before=len(before), rows_after=len(after), rare_copies=int(is_rare.sum()),
                              redrawn=redrawn, removed=len(flagged), rounds=rounds, redraw_seeds=tuple(seeds),
                              change=change, near_copies=int(is_near.sum()),
                              near_copy_quantile=near.quantile if near is not None else 0.0,
                              near_copy_distance=near.threshold if near is not None else 0.0)
    return after, result


def _codes(before: pd.Series, after: pd.Series, numeric: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Both columns as integer codes over their pooled values (sorted for numbers, missing last)."""
    pooled = pd.concat([before, after], ignore_index=True)
    if numeric:
        values = pooled.to_numpy(dtype=np.float64)
        uniq = np.unique(values[~np.isnan(values)])
        codes = np.where(np.isnan(values), len(uniq), np.searchsorted(uniq, np.nan_to_num(values)))
        size = len(uniq) + 1
    else:
        codes, uniq = pd.factorize(pooled.astype(object).where(pooled.notna(), "\x00missing"))
        size = len(uniq)
    return codes[: len(before)], codes[len(before):], max(size, 1)


def _distance(p: np.ndarray, q: np.ndarray, numeric: bool) -> np.ndarray:
    """KS (max |cdf difference|) or total variation between probability rows of `p` and `q`."""
    if numeric:
        return np.abs(np.cumsum(p, axis=-1) - np.cumsum(q, axis=-1)).max(axis=-1)
    return 0.5 * np.abs(p - q).sum(axis=-1)


def _shares(col: pd.Series) -> dict[str, float]:
    s = col.astype(object).where(col.notna(), "(missing)").astype(str).value_counts(normalize=True)
    return {str(k): round(float(v), 6) for k, v in s.sort_index().items()}


def cohort_change(
    before: pd.DataFrame, after: pd.DataFrame, *, schema: Schema, changed: int, added: int, seed: int,
    trials: int = CHANGE_TRIALS, alpha: float = CHANGE_ALPHA,
) -> CohortChange:
    """Per-column distance between `after` and `before`, each judged against the sampling noise of
    the release itself: `trials` seeded bootstrap samples of len(after) rows drawn from `before`
    with replacement (another sample of the same size from the same generator). A column is bent
    when its distance exceeds its bound: the (1 - alpha) quantile of the trials' largest scaled
    distance (max over columns of distance / that column's trial mean) times its own trial mean."""
    target = schema.target
    shares = ({}, {}) if target is None or schema.column(target).kind != "categorical" else (
        _shares(before[target]), _shares(after[target]))
    if changed == 0 or len(after) == 0:
        return CohortChange(changed, added, 0, alpha, seed, (), target, *shares)
    rng = np.random.default_rng(seed)
    n, m = len(before), len(after)
    coded = [(_codes(before[c.name], after[c.name], c.kind != "categorical"), c.kind != "categorical")
             for c in schema.columns]
    observed = [float(_distance(np.bincount(a, minlength=size) / m, np.bincount(b, minlength=size) / n, numeric))
                for (b, a, size), numeric in coded]
    null = np.empty((trials, len(coded)))
    for lo in range(0, trials, 100):
        idx = rng.integers(0, n, size=(min(100, trials - lo), m))
        offsets = np.arange(len(idx))[:, None]
        for j, ((b, _, size), numeric) in enumerate(coded):
            counts = np.bincount((offsets * size + b[idx]).ravel(), minlength=len(idx) * size).reshape(len(idx), size)
            null[lo:lo + len(idx), j] = _distance(counts / m, np.bincount(b, minlength=size)[None, :] / n, numeric)
    scale = np.maximum(null.mean(axis=0), 1.0 / n)
    bound = float(np.quantile((null / scale).max(axis=1), 1 - alpha, method="higher"))
    columns = tuple(
        ColumnChange(c.name, "ks" if numeric else "tv", round(obs, 6), round(float(bound * s), 6),
                     bool(obs > bound * s))
        for c, (_, numeric), obs, s in zip(schema.columns, coded, observed, scale)
    )
    return CohortChange(changed, added, trials, alpha, seed, columns, target, *shares)


def generator_redraw(generator, target: str | None) -> Redraw:
    """A `Redraw` over a fitted generator: rows of the given classes when there are labels."""

    def redraw(n: int, seed: int, labels: np.ndarray | None) -> pd.DataFrame:
        conditions = None if labels is None or target is None else pd.DataFrame({target: labels})
        return generator.sample(n, seed=seed, conditions=conditions)

    return redraw
