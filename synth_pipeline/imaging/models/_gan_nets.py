"""Torch building blocks the MRI GANs share (gan.py imports this lazily, so the registry stays torch-free).

- `fourier_features` / `PositionEmbedding`: a slice position in [0, 1] -> sinusoidal features -> MLP.
- `Generator` / `Discriminator`: DCGAN-shaped conv nets that scale with the image size (4x4 -> size by
  stride-2 up blocks; size -> 4x4 by stride-2 down blocks), optionally position-conditioned
  (generator: embedding concatenated to z; discriminator: projection term, Miyato & Koyama 2018);
  `dims=3` makes the same nets volumetric (4^3 -> size^3, Conv3d), for r3gan_3d.
- Losses, each `d_loss(critic, real, fake) -> (loss, logs)` / `g_loss(critic, real, fake) -> loss`
  with `critic(x) -> (n,)` scores: non-saturating BCE (DCGAN), WGAN-GP, and R3GAN's relativistic
  pairing loss with R1 + R2. `grad_sq_norm` is the per-sample ||dD/dx||^2 that WGAN-GP, R1 and R2 use.
"""

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

Critic = Callable[[torch.Tensor], torch.Tensor]


def check_size(size: int) -> int:
    """Number of stride-2 blocks between 4x4 and `size`; the nets need a power of two >= 16."""
    if size < 16 or size & (size - 1):
        raise ValueError(f"image size must be a power of two >= 16, got {size}")
    return int(math.log2(size)) - 2


def level_channels(size: int, width: int) -> list[int]:
    """Channels at 4x4, 8x8, ..., size: `width` at full resolution, doubling per halving, capped at 8x."""
    n = check_size(size)
    return [width * min(8, 2 ** (n - i)) for i in range(n + 1)]


# ---- position embedding ----------------------------------------------------------------------------


def fourier_features(position: torch.Tensor, n_freq: int) -> torch.Tensor:
    """(n,) positions in [0, 1] -> (n, 2 n_freq) [sin, cos](2^k pi p), k < n_freq: smooth in p, yet
    fine enough at high k that neighbouring slice heights are told apart."""
    freqs = math.pi * 2.0 ** torch.arange(n_freq, device=position.device, dtype=position.dtype)
    angles = position.reshape(-1, 1) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class PositionEmbedding(nn.Module):
    """Fourier features of the position through a 2-layer MLP (learned, so each net picks its scale)."""

    def __init__(self, dim: int, n_freq: int = 6) -> None:
        super().__init__()
        self.n_freq = n_freq
        self.mlp = nn.Sequential(nn.Linear(2 * n_freq, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, position: torch.Tensor) -> torch.Tensor:
        return self.mlp(fourier_features(position, self.n_freq))


# ---- networks --------------------------------------------------------------------------------------


def _norm(kind: str, ch: int, dims: int = 2) -> nn.Module:
    if kind == "batch":
        return (nn.BatchNorm2d, nn.BatchNorm3d)[dims - 2](ch)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


def up_block(cin: int, cout: int, norm: str, dims: int = 2) -> nn.Sequential:
    """x2 upsampling: 4x4 stride-2 transposed conv -> norm -> ReLU (DCGAN)."""
    conv = (nn.ConvTranspose2d, nn.ConvTranspose3d)[dims - 2](cin, cout, 4, 2, 1, bias=norm == "none")
    return nn.Sequential(conv, _norm(norm, cout, dims), nn.ReLU())


def down_block(cin: int, cout: int, norm: str, dims: int = 2) -> nn.Sequential:
    """/2 downsampling: 4x4 stride-2 conv -> norm -> LeakyReLU(0.2) (DCGAN)."""
    conv = (nn.Conv2d, nn.Conv3d)[dims - 2](cin, cout, 4, 2, 1, bias=norm == "none")
    return nn.Sequential(conv, _norm(norm, cout, dims), nn.LeakyReLU(0.2))


class Generator(nn.Module):
    """z (and position) -> linear to 4x4 -> up blocks -> 3x3 conv -> tanh, (n, channels, size, size)
    (`dims=3`: (n, channels, size, size, size))."""

    def __init__(self, size: int, channels: int, width: int, z_dim: int, norm: str,
                 pos_dim: int = 0, dims: int = 2) -> None:
        super().__init__()
        chans = level_channels(size, width)
        self.dims = dims
        self.embed = PositionEmbedding(pos_dim) if pos_dim else None
        self.stem = nn.Linear(z_dim + pos_dim, chans[0] * 4 ** dims)
        self.stem_act = nn.Sequential(_norm(norm, chans[0], dims), nn.ReLU())
        self.body = nn.Sequential(*(up_block(a, b, norm, dims) for a, b in zip(chans, chans[1:])))
        self.head = (nn.Conv2d, nn.Conv3d)[dims - 2](chans[-1], channels, 3, 1, 1)

    def forward(self, z: torch.Tensor, position: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(position)], dim=1)
        h = self.stem_act(self.stem(z).reshape(len(z), -1, *[4] * self.dims))
        return torch.tanh(self.head(self.body(h)))


class Discriminator(nn.Module):
    """(n, channels, size, size) (`dims=3`: size^3) -> down blocks to 4x4 -> linear score; with `pos_dim`, plus the
    projection <embed(position), features>. The first block has no norm (DCGAN). `updates` counts
    critic steps (a buffer, so checkpoints hold it) to schedule generator steps."""

    def __init__(self, size: int, channels: int, width: int, norm: str, pos_dim: int = 0,
                 dims: int = 2) -> None:
        super().__init__()
        chans = level_channels(size, width)[::-1]
        blocks = [down_block(channels, chans[1], "none", dims)]
        blocks += [down_block(a, b, norm, dims) for a, b in zip(chans[1:], chans[2:])]
        self.body = nn.Sequential(*blocks)
        feat = chans[-1] * 4 ** dims
        self.head = nn.Linear(feat, 1)
        self.embed = PositionEmbedding(pos_dim) if pos_dim else None
        self.project = nn.Linear(pos_dim, feat, bias=False) if pos_dim else None
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor, position: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(x).flatten(1)
        out = self.head(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.project(self.embed(position)) * h).sum(1)
        return out


def n_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---- losses ----------------------------------------------------------------------------------------


def grad_sq_norm(scores: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Per-sample ||d scores / d inputs||^2 (graph kept, so a penalty on it trains the critic);
    zero where the scores do not depend on the inputs."""
    grad = None
    if scores.requires_grad:
        (grad,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True, allow_unused=True)
    if grad is None:
        return torch.zeros(len(inputs), device=inputs.device, dtype=inputs.dtype)
    return grad.flatten(1).pow(2).sum(1)


def bce_d_loss(critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """DCGAN: binary cross-entropy, real -> 1, fake -> 0."""
    dr, df = critic(real), critic(fake)
    loss = F.binary_cross_entropy_with_logits(dr, torch.ones_like(dr)) + \
        F.binary_cross_entropy_with_logits(df, torch.zeros_like(df))
    return loss, {"d": loss.item()}


def bce_g_loss(critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -log D(G(z)) (Goodfellow et al.; DCGAN's choice)."""
    df = critic(fake)
    return F.binary_cross_entropy_with_logits(df, torch.ones_like(df))


def wgan_gp_d_loss(critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                   lam: float = 10.0) -> tuple[torch.Tensor, dict]:
    """WGAN-GP critic loss E[D(fake)] - E[D(real)] + lam E[(||grad D(x_hat)|| - 1)^2] on random
    interpolates x_hat (Gulrajani et al. 2017)."""
    eps = torch.rand(len(real), *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
    mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
    gp = (grad_sq_norm(critic(mix), mix).add(1e-12).sqrt() - 1).pow(2).mean()
    w = critic(real).mean() - critic(fake).mean()
    return -w + lam * gp, {"wdist": w.item(), "gp": gp.item()}


def wgan_g_loss(critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return -critic(fake).mean()


def r3gan_d_loss(critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                 gamma: float) -> tuple[torch.Tensor, dict]:
    """R3GAN discriminator loss (Huang et al. 2024): relativistic pairing E[softplus(-(D(x_r) - D(x_f)))]
    plus R1 + R2, gamma/2 E||grad D||^2 on the real and on the fake samples. Without the penalties the
    relativistic loss alone does not converge locally; with both it does (their Section 2)."""
    real = real.detach().requires_grad_(True)
    fake = fake.detach().requires_grad_(True)
    dr, df = critic(real), critic(fake)
    adv = F.softplus(-(dr - df)).mean()
    r1 = 0.5 * gamma * grad_sq_norm(dr, real).mean()
    r2 = 0.5 * gamma * grad_sq_norm(df, fake).mean()
    return adv + r1 + r2, {"d": adv.item(), "r1": r1.item(), "r2": r2.item()}


def r3gan_g_loss(critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The pairing loss with the roles swapped: E[softplus(-(D(x_f) - D(x_r)))] (D(x_r) is a constant
    for the generator, so it is scored without a graph)."""
    with torch.no_grad():
        dr = critic(real)
    return F.softplus(-(critic(fake) - dr)).mean()
