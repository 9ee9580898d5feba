"""Negative control for the image release gate: `copy` hands back training slices. It exists to prove
that the gate refuses memorised output; never use it for a real release."""

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from synth_pipeline.imaging.models.base import ImageGenerator, register
from synth_pipeline.imaging.slices import SliceSet


class SliceStore(nn.Module):
    """The training images and positions as buffers, so the shared state_dict save/load keeps them."""

    def __init__(self, n: int, size: int) -> None:
        super().__init__()
        self.register_buffer("images", torch.zeros(n, 1, size, size))
        self.register_buffer("position", torch.zeros(n))


def nearest_slices(positions: np.ndarray, stored: np.ndarray, seed: int) -> np.ndarray:
    """For each requested position the index of a stored slice at the nearest position; ties (e.g.
    several subjects' slices at one position) broken by a seeded random choice."""
    rng = np.random.default_rng(seed)
    gap = np.abs(np.asarray(positions, dtype=np.float64)[:, None] - stored.astype(np.float64)[None])
    best = gap <= gap.min(axis=1, keepdims=True)
    return np.array([rng.choice(np.flatnonzero(row)) for row in best], dtype=np.int64)


@register
class CopyControl(ImageGenerator):
    name = "copy"
    summary = "control: returns the training slice nearest each position; the gate must refuse it"
    conditional = True

    def __init__(self, budget: str = "default", n_slices: int = 0) -> None:
        """`n_slices` is set by fit (it sizes the buffers, so that load can rebuild them)."""
        super().__init__(budget=budget, n_slices=n_slices)

    def _build(self, size: int) -> dict[str, Any]:
        return {"store": SliceStore(self.params["n_slices"], size)}

    def _fit(self, train: SliceSet, seed: int, checkpoint_dir: Path | None) -> None:
        self.params["n_slices"] = len(train)
        store = SliceStore(len(train), self.size)
        store.images.copy_(torch.as_tensor(train.images, dtype=torch.float32))
        store.position.copy_(torch.as_tensor(train.position, dtype=torch.float32))
        self.modules = {"store": store}

    def _sample(self, positions: np.ndarray, seed: int) -> np.ndarray:
        store = self.modules["store"]
        idx = nearest_slices(positions, store.position.numpy(), seed)
        return store.images.numpy()[idx]
