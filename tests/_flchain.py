"""The real FLCHAIN table (synth_pipeline.data's bundled loader and declared schema) and the
controls the metric tests judge: seeded stratified splits and a lightly perturbed copy."""

from functools import lru_cache

import numpy as np
import pandas as pd

from synth_pipeline import preprocess
from synth_pipeline.data import load_dataset
from synth_pipeline.schema import Schema, conform


@lru_cache(maxsize=1)
def _table() -> tuple[pd.DataFrame, Schema]:
    lt = load_dataset("flchain")
    return preprocess.model_table(lt.raw, lt.schema), lt.schema


def flchain() -> tuple[pd.DataFrame, Schema]:
    """FLCHAIN conformed to its declared schema (futime and chapter dropped: they leak the outcome)."""
    df, schema = _table()
    return df.copy(), schema


def split(df: pd.DataFrame, schema: Schema, *, test_size: float = 0.3, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pipeline's seeded stratified split: (train, holdout)."""
    s = preprocess.split(df, schema, holdout_fraction=test_size, seed=seed)
    return s.train, s.holdout


def noisy_copy(df: pd.DataFrame, schema: Schema, *, rel_std: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """A lightly perturbed copy: Gaussian noise of rel_std × each numeric column's std, re-conformed
    (integer columns rounded), categories and missingness untouched."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    for c in schema.numeric:
        out[c] = out[c] + rng.normal(0.0, rel_std * out[c].std(), len(out))
    return conform(out, schema)


def by_name(results) -> dict:
    """Metric results keyed by name."""
    return {m.name: m for m in results}
