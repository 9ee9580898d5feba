"""SMOTE family (imbalanced-learn): new rows interpolated between same-class neighbours.

imblearn returns the originals first and the new rows after them; only the new rows are released, and
a new row that still equals a training row (between duplicates, or after rounding) is dropped too.
`sample(n)` asks for n new rows spread over the classes by their training frequency (or all of the
conditioned class), through a dict sampling strategy of original count + new rows per class.

The sampler follows the encoded feature kinds: SMOTE for all-numeric, SMOTEN for all-categorical,
SMOTE-NC for mixed. Missing values are encoded for it and decoded back: a numeric NaN becomes the
column median plus a categorical missing-indicator column (so SMOTE-NC votes on missingness like any
category, and a new row is missing where the indicator says so); a categorical NaN is its own category.
"""

import numpy as np
import pandas as pd

from synth_pipeline.errors import GeneratorError
from synth_pipeline.generators.base import TrainingRowsGenerator, register
from synth_pipeline.schema import conform

MISSING = "__missing__"
FLAG_SUFFIX = "__isna"


@register
class SMOTEGenerator(TrainingRowsGenerator):
    name = "smote"
    summary = "SMOTE / SMOTE-NC / SMOTEN (imbalanced-learn): new rows only, interpolated within each class"

    def __init__(self, k_neighbors: int = 5) -> None:
        super().__init__(k_neighbors=k_neighbors)

    def _fit(self, table: pd.DataFrame, seed: int) -> None:
        if not self.classes:
            raise GeneratorError("smote: needs a categorical target to interpolate within classes")
        rows = table[table[self.target].notna()].reset_index(drop=True)
        sizes = rows[self.target].value_counts()
        small = sorted(sizes[sizes < 2].index)
        if small:
            raise GeneratorError(
                f"smote: class(es) {small} of '{self.target}' have fewer than 2 rows; "
                "SMOTE needs two rows of a class to interpolate between"
            )
        super()._fit(rows, seed)

    @property
    def _features(self) -> list[str]:
        return [c for c in self.schema.names if c != self.target]

    @property
    def _flagged(self) -> list[str]:
        """Numeric features with missing values in training: each gets a missing-indicator column."""
        numeric = [c for c in self._features if c in self.schema.numeric]
        return [c for c in numeric if self.rows[c].isna().any()]

    def _encode(self) -> tuple[pd.DataFrame, list[str]]:
        """The training features as imblearn takes them, and the names of the categorical ones."""
        x = self.rows[self._features].copy()
        categorical = [c for c in self._features if c in self.schema.categorical]
        for c in self._flagged:
            x[c + FLAG_SUFFIX] = np.where(x[c].isna(), "1", "0").astype(object)
            median = x[c].median()
            x[c] = x[c].fillna(0.0 if pd.isna(median) else median)
            categorical.append(c + FLAG_SUFFIX)
        for c in categorical:
            x[c] = x[c].fillna(MISSING).astype(object)
        return x, categorical

    def _decode(self, x: pd.DataFrame) -> pd.DataFrame:
        x = x.copy()
        for c in self._flagged:
            x.loc[x[c + FLAG_SUFFIX] == "1", c] = np.nan
        x = x.drop(columns=[c + FLAG_SUFFIX for c in self._flagged])
        for c in self._features:
            if c in self.schema.categorical:
                x[c] = x[c].where(x[c] != MISSING)
        return x

    @property
    def method(self) -> str:
        """The imblearn sampler the encoded features call for."""
        flags = len(self._flagged)
        categorical = flags + sum(c in self.schema.categorical for c in self._features)
        if not categorical:
            return "SMOTE"
        return "SMOTEN" if categorical == len(self._features) + flags else "SMOTENC"

    def _allocate(self, k: int, counts: pd.Series) -> dict[str, int]:
        """k new rows over the classes by training frequency (largest remainder, deterministic)."""
        share = counts / counts.sum() * k
        new = np.floor(share).astype(int)
        rest = int(k - new.sum())
        new[(share - new).sort_values(ascending=False, kind="stable").index[:rest]] += 1
        return {c: int(m) for c, m in new.items() if m > 0}

    def _draw(self, k: int, seed: int, label: str | None) -> pd.DataFrame:
        """New rows per class; a few spare ones are drawn so that the rare new row identical to a
        training row (interpolating between duplicate rows, or rounding onto one) can be dropped."""
        counts = self.rows[self.target].value_counts().sort_index()
        wanted = self._allocate(k, counts) if label is None else {label: k}
        spare = {c: m + m // 20 + 2 for c, m in wanted.items()}
        new = conform(self._resample(spare, counts, seed), self.schema)
        new = new[~_row_keys(new).isin(_row_keys(self.rows))]
        short = {c: m for c, m in wanted.items() if (new[self.target] == c).sum() < m}
        if short:
            raise GeneratorError(f"smote: too few new rows that differ from every training row for {short}")
        out = pd.concat([new[new[self.target] == c].head(m) for c, m in wanted.items()])
        return out.sample(frac=1.0, random_state=seed) if label is None else out

    def _resample(self, new: dict[str, int], counts: pd.Series, seed: int) -> pd.DataFrame:
        """imblearn asked for `new[c]` more rows of each class c; only those new rows are returned."""
        from imblearn import over_sampling

        strategy = {c: int(counts[c]) + m for c, m in new.items()}
        k_neighbors = min(self.params["k_neighbors"], min(int(counts[c]) for c in new) - 1)
        x, categorical = self._encode()
        method = self.method
        options = {"categorical_features": categorical} if method == "SMOTENC" else {}
        sampler = getattr(over_sampling, method)(
            sampling_strategy=strategy, k_neighbors=k_neighbors, random_state=seed, **options
        )
        try:
            x_res, y_res = sampler.fit_resample(x, self.rows[self.target])
        except ValueError as e:
            raise GeneratorError(f"smote: {method} failed ({str(e).splitlines()[0]})") from e
        out = self._decode(x_res.iloc[len(x) :].reset_index(drop=True))
        out[self.target] = y_res.iloc[len(x) :].to_numpy()
        return out


def _row_keys(df: pd.DataFrame) -> pd.Series:
    return pd.util.hash_pandas_object(df, index=False)
