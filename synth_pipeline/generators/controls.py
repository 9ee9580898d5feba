"""Negative controls that exist to prove the privacy gate refuses a release: `copy` hands back training
rows and `perturbed_copy` training rows with a little numeric noise. Never use them for a real release."""

import numpy as np
import pandas as pd

from synth_pipeline.generators.base import TrainingRowsGenerator, register


class _Replay(TrainingRowsGenerator):
    """Replays training rows through `_alter` (identity for `copy`)."""

    def _draw(self, k: int, seed: int, label: str | None) -> pd.DataFrame:
        """k training rows (of `label`), in seeded shuffled order, cycling when k exceeds them."""
        rows = self._class_rows(label)
        rng = np.random.default_rng(seed)
        order = np.concatenate([rng.permutation(len(rows)) for _ in range(-(-k // len(rows)))])[:k]
        return self._alter(rows.iloc[order].reset_index(drop=True), rng)

    def _alter(self, rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        return rows


@register
class CopyControl(_Replay):
    name = "copy"
    summary = "control: returns training rows (shuffled); the privacy gate must refuse it"

    def __init__(self) -> None:
        super().__init__()


@register
class PerturbedCopyControl(_Replay):
    name = "perturbed_copy"
    summary = "control: training rows + noise (0.05 x std) on numeric columns; the gate must refuse it"

    def __init__(self, noise: float = 0.05) -> None:
        super().__init__(noise=noise)

    def _alter(self, rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """Noise of `noise` x the training std per numeric column; integers are re-rounded by conform,
        categoricals and missing values stay as they are."""
        rows = rows.copy()
        for c in self.schema.numeric:
            scale = self.params["noise"] * np.nan_to_num(self.rows[c].std())
            rows[c] = rows[c] + rng.normal(0.0, 1.0, len(rows)) * scale
        return rows
