"""`r3gan_3d`: the purely volumetric baseline (issue 15 part 3): a GAN that generates whole brain
volumes at size^3 (32^3 at the arm's default 32 px slices) with the R3GAN objective, its axial slices
taken afterwards. It shows — or refutes — that direct 3D generation fails under limited resources
(a handful of training volumes, a CPU budget) where the 2D models learn from every slice.

Training data: each training subject's slices (`SliceSet`, ordered by position) restacked into a
volume and resampled linearly along the axial axis to `size` slices, so volume slice k sits at
position k / (size - 1) of the brain extent, exactly the positions the 2D models are conditioned on.
Nets: the DCGAN-shaped backbone of `_gan_nets.py` with `dims=3` (4^3 -> size^3), no normalisation in
the discriminator, the R3GAN losses and optimiser of r3gan_stacked; the training loop is TorchGAN's.

Sampling honours positions by construction: a volume is drawn per run of increasing positions (a new
volume wherever the requested position does not increase), and each requested slice is linearly
interpolated along its volume's axial axis. `pipeline.sample_positions` lists the holdout subjects'
slices in order, so every holdout subject gets one synthetic volume, and an assembled volume
(`assemble_volume`: increasing positions) is one generated volume.

Budgets (`VOLUME_BUDGETS`, the GanBudget fields; `steps=` / `width=` override): one sample is a whole
volume (size x the voxels of a slice), so the width and step count are smaller than the 2D GANs'
and chosen so that `default` costs about the wall time of r3gan_positional's `default` (the fit
times are in benchmarks/MRI.md); the batch is capped by the number of training volumes (8 of the
default cohort's 12 subjects, so a default step sees every training volume).
"""

from typing import Any

import numpy as np

from synth_pipeline.imaging.models.base import register
from synth_pipeline.imaging.models.gan import GanBudget, R3GANBase
from synth_pipeline.imaging.slices import SliceSet

VOLUME_BUDGETS: dict[str, GanBudget] = {
    "tiny": GanBudget(width=4, z_dim=32, steps=20, batch_size=4),
    "default": GanBudget(width=8, z_dim=64, steps=800, batch_size=8),
    "full": GanBudget(width=32, z_dim=128, steps=20000, batch_size=16),
}
SAMPLE_CHUNK = 16  # volumes generated at once


def slices_to_volumes(train: SliceSet, depth: int) -> np.ndarray:
    """(subjects, 1, depth, H, W) float32: each subject's slices ordered by position, resampled linearly
    along the axial axis at positions linspace(0, 1, depth)."""
    grid = np.linspace(0.0, 1.0, depth)
    out = []
    for s in train.subjects():
        rows = np.flatnonzero(train.subject == s)
        rows = rows[np.argsort(train.position[rows], kind="stable")]
        pos, images = train.position[rows].astype(np.float64), train.images[rows, 0]
        if len(rows) == 1:
            out.append(np.repeat(images, depth, axis=0))
            continue
        hi = np.clip(np.searchsorted(pos, grid, side="right"), 1, len(pos) - 1)
        lo = hi - 1
        frac = np.clip((grid - pos[lo]) / np.maximum(pos[hi] - pos[lo], 1e-12), 0.0, 1.0)[:, None, None]
        out.append((1 - frac) * images[lo] + frac * images[hi])
    return np.asarray(out, dtype=np.float32)[:, None]


def slice_at(volume: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(len(positions), H, W): axial slices of a (depth, H, W) volume at positions in [0, 1], linearly
    interpolated between the two nearest volume slices."""
    z = np.asarray(positions, dtype=np.float64) * (len(volume) - 1)
    lo = np.clip(np.floor(z).astype(int), 0, len(volume) - 1)
    hi = np.minimum(lo + 1, len(volume) - 1)
    frac = (z - lo)[:, None, None]
    return ((1 - frac) * volume[lo] + frac * volume[hi]).astype(np.float32)


def volume_runs(positions: np.ndarray) -> np.ndarray:
    """Volume index of each requested position: a new volume wherever the position does not increase."""
    if len(positions) == 0:
        return np.zeros(0, dtype=int)
    return np.cumsum(np.r_[True, np.diff(positions) <= 0]) - 1


@register
class R3GAN3D(R3GANBase):
    name = "r3gan_3d"
    summary = "R3GAN objective on whole volumes (size^3); slices taken at the requested positions"
    conditional = True  # positions are honoured by slicing the generated volume, not by conditioning
    stacked = False
    budgets = VOLUME_BUDGETS

    def _nets(self, size: int) -> tuple[Any, Any]:
        from synth_pipeline.imaging.models._gan_nets import Discriminator, Generator

        spec = self.spec
        g = Generator(size, 1, spec.width, spec.z_dim, self.g_norm, dims=3)
        return g, Discriminator(size, 1, spec.width, self.d_norm, dims=3)

    def _training_data(self, train: SliceSet) -> list[np.ndarray]:
        return [slices_to_volumes(train, train.size)]

    def sample_volumes(self, n: int, *, seed: int) -> np.ndarray:
        """(n, size, size, size) generated volumes (axial axis first) in [-1, 1]."""
        import torch

        from synth_pipeline.nn.training import num_threads

        gen = self.modules["generator"].eval()
        z = torch.randn(n, self.spec.z_dim, generator=torch.Generator().manual_seed(seed))
        parts = []
        with torch.no_grad(), num_threads(1 if self.device == "cpu" else None):
            for i in range(0, n, SAMPLE_CHUNK):
                parts.append(gen(z[i:i + SAMPLE_CHUNK].to(self.device)).cpu()[:, 0])
        size = self.size
        return torch.cat(parts).numpy() if parts else np.zeros((0, size, size, size), np.float32)

    def _sample(self, positions: np.ndarray, seed: int) -> np.ndarray:
        runs = volume_runs(positions)
        out = np.zeros((len(positions), 1, self.size, self.size), np.float32)
        volumes = self.sample_volumes(int(runs.max()) + 1 if len(runs) else 0, seed=seed)
        for v, volume in enumerate(volumes):
            sel = runs == v
            out[sel, 0] = slice_at(volume, positions[sel])
        return out
