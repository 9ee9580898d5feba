"""Near copies: synthetic rows closer to a training row than real patients are to each other
(issue 14, "Diffusion at equal privacy").

The floor τ is the `quantile` of the training rows' own leave-one-out nearest-neighbour distances:
how close one real patient's nearest other patient is, in the q-th lowest share of patients. A
synthetic row nearer to some training row than τ sits closer to it than all but a share q of real
patients sit to anyone. `synth_pipeline.copies.filter_rare_copies` redraws such rows with its one
redraw loop. The distance is the DCR metric's own: Euclidean on `metrics.privacy.fit_embedding`,
fitted on train, searched exactly by `neighbors.nearest`. Only the train split is read; the holdout
the gates judge with is never touched, and neither is the fitted generator.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synth_pipeline.metrics.privacy import MixedEmbedding, fit_embedding
from synth_pipeline.neighbors import nearest
from synth_pipeline.schema import Schema


@dataclass(frozen=True, eq=False)
class DistanceFloor:
    """τ (`threshold`) for one training split, and the encoded training rows to measure against."""

    quantile: float
    threshold: float
    embedding: MixedEmbedding = field(repr=False)
    encoded_train: np.ndarray = field(repr=False)

    def distances(self, rows: pd.DataFrame) -> np.ndarray:
        """Each row's distance to its closest training row (the DCR)."""
        if len(rows) == 0:
            return np.zeros(0)
        return nearest(self.embedding.transform(rows), self.encoded_train, k=1)[0][:, 0]

    def mask(self, rows: pd.DataFrame) -> np.ndarray:
        """True where a row is closer to a training row than τ (strictly: τ = 0 flags nothing)."""
        return self.distances(rows) < self.threshold


def quantile_for(configured: float | None, generator) -> float:
    """The near-copy quantile a run applies: the config's when it sets one, else the generator's own
    (`near_copy_quantile`, 0 for most families)."""
    return float(configured) if configured is not None else float(getattr(generator, "near_copy_quantile", 0.0))


def distance_floor(train: pd.DataFrame, schema: Schema, quantile: float) -> DistanceFloor | None:
    """The floor at `quantile` of train's leave-one-out nearest-neighbour distances (its second
    neighbour in a search of train against itself: the first is the row, or an equal one at 0);
    None when quantile is 0 (no floor)."""
    if quantile <= 0 or len(train) < 2:
        return None
    emb = fit_embedding(train, schema)
    encoded = emb.transform(train)
    loo = nearest(encoded, encoded, k=2)[0][:, 1]
    return DistanceFloor(quantile, float(np.quantile(loo, quantile)), emb, encoded)
