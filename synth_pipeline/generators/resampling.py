"""Statistical resampling (imbalanced-learn): `ros`, `rus`, `smote`, `borderline_smote`, `adasyn`.

All five share one path: encode the training features for imblearn, resample, decode back to the
schema's types (then `conform`). Only the encoding and the choice of output rows differ:

* Encoding. `smote`, `ros` and `rus` take the table as it is (`native`): numeric columns as numbers,
  categoricals as strings (imblearn's random samplers accept mixed object arrays; `smote` picks
  SMOTE for all-numeric features, SMOTEN for all-categorical, SMOTE-NC for mixed). BorderlineSMOTE
  and ADASYN are numeric-only in imblearn, so for them (`onehot`) numeric columns are z-scored on
  the training rows and each categorical becomes 0/1 one-hot columns; after resampling numbers are
  un-scaled and each categorical is decoded by argmax over its one-hot block (an interpolated row
  takes the level of the neighbour it lies nearer to). Missing values, either way: a numeric NaN
  becomes the column median plus a categorical missing-indicator column (so a new row is missing
  where the decoded indicator says so); a categorical NaN is its own category.

* Output rows. `sample(n)` asks for n rows spread over the classes by their training frequency (or
  all of the conditioned class), one imblearn call per class (a dict sampling strategy of original
  count + new rows). Over-samplers release only their new rows (imblearn returns the originals first
  and the new ones after them).
  - `smote`, `borderline_smote`, `adasyn` interpolate; a new row that still equals a training row
    (between duplicate rows, or after rounding) is dropped, so spare rows are asked for and a seeded
    subset of the survivors is kept (ADASYN orders its new rows by source row, and rounds its
    per-row counts: it is asked for at least twice its class size, and when any sampler yields too
    few the request is doubled and retried).
  - `ros` (RandomOverSampler) releases its new rows, which are duplicates of training rows, and
    `rus` (RandomUnderSampler) releases n rows drawn (seeded; cycling when n exceeds them) from its
    class-balanced under-sample of the training rows, i.e. real rows. They are leaky baselines that
    exist so the privacy gate is seen to refuse them; nothing is dropped from them. Never release.

`augmented_training_set` is the other use: the real training rows plus a method's new rows, classes
balanced, for internal modelling only (it is a function returning a frame, not a release output).
"""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from synth_pipeline.errors import GeneratorError
from synth_pipeline.generators.base import TrainingRowsGenerator, make_generator, register
from synth_pipeline.schema import Schema, conform

MISSING = "__missing__"
FLAG_SUFFIX = "__isna"
MAX_ATTEMPTS = 10  # interpolators: doublings of the request before giving up on a class


@dataclass(frozen=True)
class _Encoding:
    """How the training features are handed to imblearn and read back (module docstring)."""

    features: tuple[str, ...]
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]  # schema categoricals, then the missing indicators of `flagged`
    flagged: tuple[str, ...]  # numeric features with missing values in training
    fill: tuple[float, ...]  # per numeric feature: the median that replaces NaN
    onehot: bool
    centre: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    levels: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def fit(cls, rows: pd.DataFrame, schema: Schema, features: list[str], onehot: bool) -> "_Encoding":
        numeric = tuple(c for c in features if c not in schema.categorical)
        flagged = tuple(c for c in numeric if rows[c].isna().any())
        categorical = tuple(c for c in features if c in schema.categorical) + tuple(c + FLAG_SUFFIX for c in flagged)
        medians = [rows[c].median() for c in numeric]
        fill = tuple(0.0 if pd.isna(m) else float(m) for m in medians)
        enc = cls(tuple(features), numeric, categorical, flagged, fill, onehot)
        if not onehot:
            return enc
        x = enc._filled(rows)
        centre = tuple(float(x[c].mean()) for c in numeric)
        std = [float(x[c].std(ddof=0)) for c in numeric]
        scale = tuple(s if np.isfinite(s) and s > 0 else 1.0 for s in std)
        levels = tuple(tuple(sorted(x[c].unique())) for c in categorical)
        return cls(tuple(features), numeric, categorical, flagged, fill, onehot, centre, scale, levels)

    def _filled(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Features with numeric NaN -> median + "0"/"1" indicator column, categorical NaN -> MISSING."""
        x = rows[list(self.features)].copy()
        for c in self.flagged:
            x[c + FLAG_SUFFIX] = np.where(x[c].isna(), "1", "0").astype(object)
        for c, m in zip(self.numeric, self.fill):
            x[c] = x[c].fillna(m).astype("float64")
        for c in self.categorical:
            x[c] = x[c].fillna(MISSING).astype(object)
        return x.reset_index(drop=True)

    def encode(self, rows: pd.DataFrame) -> pd.DataFrame:
        x = self._filled(rows)
        if not self.onehot:
            return x
        parts = {f"n{i}": (x[c] - m) / s for i, (c, m, s) in enumerate(zip(self.numeric, self.centre, self.scale))}
        for i, (c, levels) in enumerate(zip(self.categorical, self.levels)):
            for j, level in enumerate(levels):
                parts[f"c{i}_{j}"] = (x[c] == level).astype("float64")
        return pd.DataFrame(parts, index=x.index)

    def decode(self, x: pd.DataFrame) -> pd.DataFrame:
        if self.onehot:
            out = {c: x[f"n{i}"].to_numpy() * s + m for i, (c, m, s) in enumerate(zip(self.numeric, self.centre, self.scale))}
            for i, (c, levels) in enumerate(zip(self.categorical, self.levels)):
                block = x[[f"c{i}_{j}" for j in range(len(levels))]].to_numpy(dtype=np.float64)
                out[c] = np.asarray(levels, dtype=object)[block.argmax(axis=1)]
            x = pd.DataFrame(out, index=x.index)
        else:
            x = x.copy()
        for c in self.flagged:
            x.loc[x[c + FLAG_SUFFIX] == "1", c] = np.nan
        x = x.drop(columns=[c + FLAG_SUFFIX for c in self.flagged])
        for c in self.features:
            if c in self.categorical:
                x[c] = x[c].where(x[c] != MISSING)
        return x[list(self.features)]


class _Resampler(TrainingRowsGenerator):
    """The shared encode -> imblearn -> decode path; a family names its sampler and its output rows."""

    sampler: ClassVar[str]  # the imblearn class
    onehot: ClassVar[bool] = False  # numeric-only samplers: one-hot categoricals (module docstring)
    min_class_rows: ClassVar[int] = 1
    reason_min_rows: ClassVar[str] = ""

    def _fit(self, table: pd.DataFrame, seed: int) -> None:
        if not self.classes:
            raise GeneratorError(
                f"{self.name}: needs a categorical target to resample within classes "
                f"(target is {self.target!r}{'' if self.target is None else ', ' + self.schema.column(self.target).kind})"
            )
        rows = table[table[self.target].notna()].reset_index(drop=True)
        sizes = rows[self.target].value_counts()
        small = sorted(sizes[sizes < self.min_class_rows].index)
        if small:
            raise GeneratorError(
                f"{self.name}: class(es) {small} of '{self.target}' have fewer than {self.min_class_rows} rows; "
                f"{self.reason_min_rows}"
            )
        super()._fit(rows, seed)

    @property
    def method(self) -> str:
        """The imblearn sampler this generator calls."""
        return self.sampler

    @property
    def _features(self) -> list[str]:
        return [c for c in self.schema.names if c != self.target]

    def _encoding(self) -> _Encoding:
        return _Encoding.fit(self.rows, self.schema, self._features, self.onehot)

    def _counts(self) -> pd.Series:
        return self.rows[self.target].value_counts().sort_index()

    def _sampler(self, strategy, seed: int, class_size: int, enc: _Encoding):
        raise NotImplementedError

    def _resample(self, enc: _Encoding, x: pd.DataFrame, strategy, seed: int, what: str) -> tuple[pd.DataFrame, pd.Series]:
        """imblearn's resampled features (encoded) and labels; its errors become GeneratorErrors."""
        y = self.rows[self.target]
        size = int(y.value_counts().min() if not isinstance(strategy, dict) else min(self._counts()[c] for c in strategy))
        sampler = self._sampler(strategy, seed, size, enc)
        try:
            with threadpool_limits(limits=1):  # one thread: same neighbours everywhere, no oversubscription
                return sampler.fit_resample(x, y)
        except (ValueError, RuntimeError) as e:
            raise GeneratorError(self._explain(e, what)) from e

    def _explain(self, e: Exception, what: str) -> str:
        return f"{self.name}: {self.method} failed for {what} ({str(e).splitlines()[0]})"

    def _allocate(self, k: int, counts: pd.Series) -> dict[str, int]:
        """k rows over the classes by `counts` (largest remainder, deterministic)."""
        share = counts / counts.sum() * k
        new = np.floor(share).astype(int)
        rest = int(k - new.sum())
        new[(share - new).sort_values(ascending=False, kind="stable").index[:rest]] += 1
        return {c: int(m) for c, m in new.items() if m > 0}

    def _new_rows(self, wanted: dict[str, int], seed: int) -> pd.DataFrame:
        """Exactly wanted[c] output rows of each class c, conformed, grouped by class."""
        raise NotImplementedError

    def _draw(self, k: int, seed: int, label: str | None) -> pd.DataFrame:
        wanted = self._allocate(k, self._counts()) if label is None else {label: k}
        out = self._new_rows(wanted, seed)
        return out.sample(frac=1.0, random_state=seed) if label is None else out


def _class_seed(seed: int, label: str) -> int:
    """A seed per (seed, class), so classes draw independent streams."""
    return int(np.random.SeedSequence([seed % 2**32, *label.encode()]).generate_state(1)[0])


class _OverSampler(_Resampler):
    """Releases only the rows imblearn adds (after the originals), one call per class."""

    drops_copies: ClassVar[bool] = False

    def _oversample(self, enc: _Encoding, x: pd.DataFrame, label: str, m: int, seed: int) -> pd.DataFrame:
        """m more rows of class `label` asked of imblearn; the ones it adds, decoded and conformed."""
        strategy = {label: int(self._counts()[label]) + m}
        x_res, y_res = self._resample(enc, x, strategy, seed, f"class '{label}'")
        new = enc.decode(x_res.iloc[len(x):].reset_index(drop=True))
        new[self.target] = y_res.iloc[len(x):].to_numpy()
        return conform(new, self.schema)

    def _new_rows(self, wanted: dict[str, int], seed: int) -> pd.DataFrame:
        enc = self._encoding()
        x = enc.encode(self.rows)
        parts = []
        for label, m in wanted.items():
            s = _class_seed(seed, label)
            parts.append(self._interpolated(enc, x, label, m, s) if self.drops_copies else self._oversample(enc, x, label, m, s))
        return pd.concat(parts, ignore_index=True)

    def _interpolated(self, enc: _Encoding, x: pd.DataFrame, label: str, m: int, seed: int) -> pd.DataFrame:
        """m new rows of `label` that differ from every training row: spare rows are asked for, and
        the request doubled while too few survive (copy removal, ADASYN's rounding of its per-row
        counts); a seeded subset of the survivors is kept (ADASYN orders new rows by source row)."""
        train_keys = _row_keys(self.rows)
        request, generated, got = self._first_request(m, int(self._counts()[label])), 0, 0
        for _ in range(MAX_ATTEMPTS):
            new = self._oversample_or_none(enc, x, label, request, seed)
            if new is not None:
                generated = len(new)
                new = new[~_row_keys(new).isin(train_keys)].reset_index(drop=True)
                got = len(new)
                if got >= m:
                    keep = np.sort(np.random.default_rng(seed).choice(got, size=m, replace=False))
                    return new.iloc[keep].reset_index(drop=True)
                if got == 0:  # nothing to generate from, or only copies: asking for more cannot help
                    break
            request *= 2
        if generated == 0:
            raise GeneratorError(f"{self.name}: {self.method} generated no new rows of class '{label}'{self.none_hint}")
        raise GeneratorError(
            f"{self.name}: only {got} of the {generated} new rows of class '{label}' {self.method} generated "
            f"differ from every training row; {m} are needed"
        )

    none_hint: ClassVar[str] = ""

    def _first_request(self, m: int, class_size: int) -> int:
        """m plus a few spares for the copies dropped."""
        return m + m // 20 + 2

    def _oversample_or_none(self, enc, x, label, request, seed) -> pd.DataFrame | None:
        return self._oversample(enc, x, label, request, seed)


@register
class RandomOverSamplerGenerator(_OverSampler):
    name = "ros"
    summary = "random over-sampling (imbalanced-learn): new rows are duplicated training rows; the gate must refuse it"
    sampler = "RandomOverSampler"

    def __init__(self) -> None:
        super().__init__()

    def _sampler(self, strategy, seed, class_size, enc):
        from imblearn.over_sampling import RandomOverSampler

        return RandomOverSampler(sampling_strategy=strategy, random_state=seed)


@register
class RandomUnderSamplerGenerator(_Resampler):
    name = "rus"
    summary = "random under-sampling (imbalanced-learn): real rows of the balanced under-sample; the gate must refuse it"
    sampler = "RandomUnderSampler"

    def __init__(self) -> None:
        super().__init__()

    def _sampler(self, strategy, seed, class_size, enc):
        from imblearn.under_sampling import RandomUnderSampler

        return RandomUnderSampler(sampling_strategy=strategy, random_state=seed)

    def _counts(self) -> pd.Series:
        """Classes as the under-sample holds them: every class cut down to the smallest one."""
        counts = super()._counts()
        return counts.clip(upper=counts.min())

    def under_sample(self, seed: int) -> pd.DataFrame:
        """imblearn's balanced under-sample of the training rows (real rows), conformed."""
        enc = self._encoding()
        x = enc.encode(self.rows)
        x_res, y_res = self._resample(enc, x, "auto", seed, "the training rows")
        kept = enc.decode(x_res.reset_index(drop=True))
        kept[self.target] = y_res.to_numpy()
        return conform(kept, self.schema)

    def _new_rows(self, wanted: dict[str, int], seed: int) -> pd.DataFrame:
        """wanted[c] rows of class c from the under-sample, in seeded order, cycling past its size."""
        kept = self.under_sample(seed)
        parts = []
        for label, m in wanted.items():
            rows = kept[kept[self.target] == label]
            rng = np.random.default_rng(_class_seed(seed, label))
            order = np.concatenate([rng.permutation(len(rows)) for _ in range(-(-m // len(rows)))])[:m]
            parts.append(rows.iloc[order])
        return pd.concat(parts, ignore_index=True)


class _Interpolator(_OverSampler):
    """SMOTE family: new rows on segments between same-class neighbours; copies of training rows dropped."""

    drops_copies = True
    min_class_rows = 2

    reason_min_rows = "the SMOTE family needs two rows of a class to interpolate between"

    def _k(self, class_size: int) -> int:
        return max(1, min(self.params["k_neighbors"], class_size - 1))


@register
class SMOTEGenerator(_Interpolator):
    name = "smote"
    summary = "SMOTE / SMOTE-NC / SMOTEN (imbalanced-learn): new rows only, interpolated within each class"
    sampler = "SMOTE"

    def __init__(self, k_neighbors: int = 5) -> None:
        super().__init__(k_neighbors=k_neighbors)

    @property
    def method(self) -> str:
        """The imblearn sampler the encoded feature kinds call for."""
        enc = self._encoding()
        if not enc.categorical:
            return "SMOTE"
        return "SMOTEN" if not enc.numeric else "SMOTENC"

    def _sampler(self, strategy, seed, class_size, enc):
        from imblearn import over_sampling

        method = self.method
        options = {"categorical_features": list(enc.categorical)} if method == "SMOTENC" else {}
        return getattr(over_sampling, method)(
            sampling_strategy=strategy, k_neighbors=self._k(class_size), random_state=seed, **options
        )


@register
class BorderlineSMOTEGenerator(_Interpolator):
    name = "borderline_smote"
    summary = "Borderline-SMOTE (imbalanced-learn; categoricals one-hot, decoded by argmax): new rows only"
    sampler = "BorderlineSMOTE"
    onehot = True
    none_hint = (
        ": no row of the class is on its border (Borderline-SMOTE interpolates only from rows with half "
        "or more, but not all, of their m_neighbors in another class)"
    )

    def __init__(self, k_neighbors: int = 5, m_neighbors: int = 10, kind: str = "borderline-1") -> None:
        super().__init__(k_neighbors=k_neighbors, m_neighbors=m_neighbors, kind=kind)

    def _sampler(self, strategy, seed, class_size, enc):
        from imblearn.over_sampling import BorderlineSMOTE

        m = max(1, min(self.params["m_neighbors"], len(self.rows) - 1))
        return BorderlineSMOTE(sampling_strategy=strategy, k_neighbors=self._k(class_size), m_neighbors=m,
                               kind=self.params["kind"], random_state=seed)


@register
class ADASYNGenerator(_Interpolator):
    name = "adasyn"
    summary = "ADASYN (imbalanced-learn; categoricals one-hot, decoded by argmax): new rows only"
    sampler = "ADASYN"
    onehot = True

    def __init__(self, k_neighbors: int = 5) -> None:
        super().__init__(k_neighbors=k_neighbors)

    def _sampler(self, strategy, seed, class_size, enc):
        from imblearn.over_sampling import ADASYN

        return ADASYN(sampling_strategy=strategy, n_neighbors=self._k(class_size), random_state=seed)

    def _first_request(self, m: int, class_size: int) -> int:
        """At least twice the class size: ADASYN rounds each row's share of the request to a whole
        number, so a request small next to the class rounds to few (or no) rows; a large one keeps its
        density weighting and needs one call."""
        return max(super()._first_request(m, class_size), 2 * class_size)

    def _oversample_or_none(self, enc, x, label, request, seed) -> pd.DataFrame | None:
        """None where ADASYN's rounding of its per-row counts left nothing to generate (retry larger)."""
        try:
            return self._oversample(enc, x, label, request, seed)
        except GeneratorError as e:
            if "No samples will be generated" in str(e):
                return None
            raise

    def _explain(self, e: Exception, what: str) -> str:
        if isinstance(e, RuntimeError) and "neigbours" in str(e):
            return (
                f"adasyn: no row of {what} has a neighbour of another class among its "
                f"{self.params['k_neighbors']} nearest, so ADASYN has no difficulty to weight its new rows "
                "by (it divides by zero); use smote instead"
            )
        return super()._explain(e, what)


def _row_keys(df: pd.DataFrame) -> pd.Series:
    return pd.util.hash_pandas_object(df, index=False)


RESAMPLERS = ("ros", "rus", "smote", "borderline_smote", "adasyn")


def augmented_training_set(train: pd.DataFrame, schema: Schema, method: str, *, seed: int, **params) -> pd.DataFrame:
    """For internal modelling only, never released: the real training rows (target present) plus
    `method`'s new rows, every class brought up to the largest one (ros duplicates rows, the SMOTE
    family interpolates; ADASYN's counts are made exact by the same request-and-subset step as
    sampling). `rus` adds nothing, so for it this is its balanced under-sample of the training rows,
    a subset of them. Conformed to `schema`, real rows first."""
    if method not in RESAMPLERS:
        raise GeneratorError(f"augmented_training_set: '{method}' is not a resampler; choose one of {list(RESAMPLERS)}")
    gen = make_generator(method, **params)
    gen.fit(train, schema, target=schema.target, seed=seed)
    if isinstance(gen, RandomUnderSamplerGenerator):
        return gen.under_sample(seed)
    counts = gen._counts()
    wanted = {c: int(counts.max() - n) for c, n in counts.items() if n < counts.max()}
    new = [gen._new_rows(wanted, seed)] if wanted else []
    return conform(pd.concat([gen.rows, *new], ignore_index=True), schema)
