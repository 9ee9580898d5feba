"""GAN baselines for axial MRI slices, in torch (CPU at 32x32-64x64, CUDA with device="cuda").

- `dcgan`: DCGAN (Radford et al. 2016), BCE (non-saturating) loss, Adam(2e-4, (0.5, 0.999)).
- `wgan_gp`: WGAN-GP (Gulrajani et al. 2017), lambda 10, n_critic 5, Adam(1e-4, (0, 0.9)).
- `r3gan_stacked`: the R3GAN objective (Huang et al. 2024: relativistic pairing loss + R1 + R2) on
  channel stacks (each slice with its lower and upper neighbour), so the model learns through-plane
  continuity; a sample is the middle channel of a generated stack.
- `r3gan_positional`: the same, conditioned on the slice position (generator: a position embedding
  concatenated to z; discriminator: projection term). The only one that honours `positions`.

stylegan3.py (`stylegan3_stacked`, `stylegan3_positional`) and gan3d.py (`r3gan_3d`) build on these
classes with their own generator or training data. All four here share one DCGAN-shaped backbone (`_gan_nets.py`; 4x4 -> size by stride-2 blocks, so it
scales with a power-of-two size >= 16). The R3GAN models reuse that backbone with no normalisation
in the discriminator, not the paper's modernised ResNet: it is the objective that is R3GAN here.
Budgets count discriminator updates (`GAN_BUDGETS`; `steps=` / `width=` override them): wgan_gp thus
makes steps / n_critic generator updates, the others one per discriminator update. Training goes
through `nn.training.train` (seeded batches, progress bar, a checkpoint per epoch and resume
with `checkpoint_dir`). A GAN has no validation loss to stop on, so every budgeted step runs.
"""

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from synth_pipeline.errors import GeneratorError
from synth_pipeline.imaging.models.base import ImageGenerator, register
from synth_pipeline.imaging.slices import SliceSet


@dataclass(frozen=True)
class GanBudget:
    """`width`: channels at full resolution (x2 per halving, capped at 8x); `steps`: discriminator
    updates; `z_dim`: latent size; `batch_size`: slices per step."""

    width: int
    z_dim: int
    steps: int
    batch_size: int


GAN_BUDGETS: dict[str, GanBudget] = {
    "tiny": GanBudget(width=8, z_dim=32, steps=40, batch_size=16),
    "default": GanBudget(width=16, z_dim=64, steps=1500, batch_size=32),
    "full": GanBudget(width=64, z_dim=128, steps=40000, batch_size=64),
}

POS_DIM = 32  # width of the position embedding (both nets)
# R1/R2 weight. The paper uses 0.05 on CIFAR-10 with its ResNet; with this smaller backbone 0.1
# let the discriminator win outright on the test discs (its loss ~0.01, position ignored), 1.0 did not.
R3GAN_GAMMA = 1.0


class TorchGAN(ImageGenerator):
    """Shared fit/sample for the GANs; a subclass names its losses, optimiser and normalisations, and
    may replace its nets (`_nets`: stylegan3.py) or what it trains on (`_training_data`: gan3d.py)."""

    stacked: ClassVar[bool] = False  # train on neighbours(1) stacks, sample the middle channel
    g_norm: ClassVar[str] = "batch"
    d_norm: ClassVar[str] = "none"  # penalties on per-sample gradients rule out batch norm in D
    lr: ClassVar[float] = 2e-4
    betas: ClassVar[tuple[float, float]] = (0.5, 0.999)
    n_critic: ClassVar[int] = 1
    budgets: ClassVar[dict[str, GanBudget]] = GAN_BUDGETS

    def __init__(self, budget: str = "default", *, steps: int | None = None, width: int | None = None) -> None:
        overrides = {k: int(v) for k, v in (("steps", steps), ("width", width)) if v is not None}
        super().__init__(budget=budget, **overrides)

    @property
    def spec(self) -> GanBudget:
        return dataclasses.replace(self.budgets[self.budget], **self.params)

    @property
    def channels(self) -> int:
        return 3 if self.stacked else 1

    def _losses(self) -> tuple[Callable, Callable]:
        """(d_loss, g_loss) as in _gan_nets: d_loss(critic, real, fake) -> (loss, logs)."""
        raise NotImplementedError

    def _nets(self, size: int) -> tuple[Any, Any]:
        """(generator, discriminator): generator(z, position) -> samples in [-1, 1],
        discriminator(x, position) -> (n,) scores with an `updates` buffer."""
        from synth_pipeline.imaging.models._gan_nets import Discriminator, Generator

        spec, pos = self.spec, POS_DIM if self.conditional else 0
        g = Generator(size, self.channels, spec.width, spec.z_dim, self.g_norm, pos)
        return g, Discriminator(size, self.channels, spec.width, self.d_norm, pos)

    def _training_data(self, train: SliceSet) -> list[np.ndarray]:
        """The arrays `train` batches: the images (or neighbour stacks), then the positions when the
        model is conditioned on them."""
        images = train.neighbours(1) if self.stacked else train.images
        data = [np.ascontiguousarray(images, dtype=np.float32)]
        if self.conditional:
            data.append(np.asarray(train.position, dtype=np.float32))
        return data

    def _build(self, size: int) -> dict[str, Any]:
        from synth_pipeline.imaging.models._gan_nets import check_size

        try:
            check_size(size)
        except ValueError as e:
            raise GeneratorError(f"{self.name}: {e}") from None
        g, d = self._nets(size)
        return {"generator": g.to(self.device), "discriminator": d.to(self.device)}

    def _fit(self, train: SliceSet, seed: int, checkpoint_dir: Path | None) -> None:
        import torch

        from synth_pipeline.nn.training import train as train_loop
        from synth_pipeline.generators.base import seed_everything

        spec = self.spec
        seed_everything(seed)
        self.modules = self._build(self.size)  # rebuilt so the initial weights follow `seed`
        gen, disc = self.modules["generator"], self.modules["discriminator"]
        opt_g = torch.optim.Adam(gen.parameters(), lr=self.lr, betas=self.betas)
        opt_d = torch.optim.Adam(disc.parameters(), lr=self.lr, betas=self.betas)
        d_loss, g_loss = self._losses()

        def step(x, position=None):
            def critic(v):
                return disc(v, position)

            with torch.no_grad():
                fake = gen(torch.randn(len(x), spec.z_dim, device=x.device), position)
            loss, logs = d_loss(critic, x, fake)
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
            disc.updates += 1
            if int(disc.updates) % self.n_critic == 0:
                loss = g_loss(critic, x, gen(torch.randn(len(x), spec.z_dim, device=x.device), position))
                opt_g.zero_grad(set_to_none=True)
                loss.backward()
                opt_g.step()
                logs["g"] = loss.item()
            return logs

        data = self._training_data(train)
        n = len(data[0])
        batch = max(1, min(spec.batch_size, n))
        epochs = math.ceil(spec.steps / max(1, n // batch))
        result = train_loop(
            self.modules, {"generator": opt_g, "discriminator": opt_d}, step, data,
            epochs=epochs, batch_size=batch, seed=seed, device=self.device,
            checkpoint_dir=checkpoint_dir, resume=checkpoint_dir is not None,
            config={"name": self.name, **dataclasses.asdict(spec), "seed": seed, "n": n,
                    "size": self.size},
            desc=self.name, on_step=self.on_step,
        )
        self.history = result.history

    def _sample(self, positions: np.ndarray, seed: int) -> np.ndarray:
        import torch

        from synth_pipeline.nn.training import num_threads

        gen = self.modules["generator"].eval()
        z = torch.randn(len(positions), self.spec.z_dim, generator=torch.Generator().manual_seed(seed))
        pos = torch.as_tensor(positions, dtype=torch.float32)
        parts = []
        with torch.no_grad(), num_threads(1 if self.device == "cpu" else None):
            for i in range(0, len(positions), 256):
                cond = pos[i:i + 256].to(self.device) if self.conditional else None
                parts.append(gen(z[i:i + 256].to(self.device), cond).cpu())
        out = torch.cat(parts).numpy() if parts else np.zeros((0, self.channels, self.size, self.size))
        middle = self.channels // 2
        return out[:, middle:middle + 1]


@register
class DCGAN(TorchGAN):
    name = "dcgan"
    summary = "DCGAN: transposed-conv generator, strided-conv discriminator, BCE loss (unconditional)"
    d_norm = "batch"

    def _losses(self):
        from synth_pipeline.imaging.models._gan_nets import bce_d_loss, bce_g_loss

        return bce_d_loss, bce_g_loss


@register
class WGANGP(TorchGAN):
    """The epoch log's "g" averages over all steps, so it is 1/n_critic of the mean generator loss."""

    name = "wgan_gp"
    summary = "WGAN-GP: Wasserstein critic with gradient penalty (lambda 10, n_critic 5; unconditional)"
    lr = 1e-4
    betas = (0.0, 0.9)
    n_critic = 5

    def _losses(self):
        from synth_pipeline.imaging.models._gan_nets import wgan_g_loss, wgan_gp_d_loss

        return wgan_gp_d_loss, wgan_g_loss


class R3GANBase(TorchGAN):
    """R3GAN objective on channel stacks; Adam(2e-4, (0, 0.99)) as in the paper's small-image configs."""

    stacked = True
    betas = (0.0, 0.99)

    def _losses(self):
        from functools import partial

        from synth_pipeline.imaging.models._gan_nets import r3gan_d_loss, r3gan_g_loss

        return partial(r3gan_d_loss, gamma=R3GAN_GAMMA), r3gan_g_loss


@register
class R3GANStacked(R3GANBase):
    name = "r3gan_stacked"
    summary = "R3GAN objective (relativistic + R1 + R2) on 3-slice channel stacks (unconditional)"


@register
class R3GANPositional(R3GANBase):
    name = "r3gan_positional"
    summary = "R3GAN objective on 3-slice channel stacks, conditioned on the slice position"
    conditional = True
