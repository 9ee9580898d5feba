"""The one in-memory form every imaging step shares: a stack of 2D slices with their position."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SliceSet:
    """`images` float32 (n, 1, H, W) scaled to [-1, 1] (-1 = background); `position` float32 (n,)
    the slice's normalised height in its volume's brain extent (0 = lowest brain slice, 1 = highest);
    `subject` (n,) str, the volume each slice came from (train/holdout splits are by subject);
    `index` (n,) int, the slice's axial index in its (resampled) volume, so neighbours can be stacked;
    `meta` JSON-able provenance (source files and hashes, skipped files, grid) carried to the manifest."""

    images: np.ndarray
    position: np.ndarray
    subject: np.ndarray
    index: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4 or self.images.shape[1] != 1:
            raise ValueError(f"images must be (n, 1, H, W), got {self.images.shape}")
        if not (len(self.position) == len(self.subject) == len(self.index) == n):
            raise ValueError("images, position, subject and index must have the same length")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])

    def take(self, mask_or_idx) -> "SliceSet":
        return SliceSet(self.images[mask_or_idx], self.position[mask_or_idx],
                        self.subject[mask_or_idx], self.index[mask_or_idx], self.meta)

    def subjects(self) -> list[str]:
        return sorted(set(self.subject.tolist()))

    def neighbours(self, k: int = 1) -> np.ndarray:
        """(n, 2k+1, H, W): each slice with its k lower and k upper neighbours of the same subject as
        channels (channel stacking); a missing neighbour at the volume's edge repeats the edge slice."""
        out = np.repeat(self.images, 2 * k + 1, axis=1)
        lookup = {(s, int(i)): j for j, (s, i) in enumerate(zip(self.subject.tolist(), self.index.tolist()))}
        for j, (s, i) in enumerate(zip(self.subject.tolist(), self.index.tolist())):
            for c, off in enumerate(range(-k, k + 1)):
                src = j
                for step in range(1, abs(off) + 1):
                    nxt = lookup.get((s, int(i) + (step if off > 0 else -step)))
                    if nxt is None:
                        break
                    src = nxt
                out[j, c] = self.images[src, 0]
        return out
