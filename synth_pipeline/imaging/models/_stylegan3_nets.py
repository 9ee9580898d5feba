"""Torch nets of our compact StyleGAN3-style generator (stylegan3.py imports this lazily).

After Karras et al. 2021 ("Alias-Free Generative Adversarial Networks"), written from the paper:
- `MappingNetwork`: z (2nd-moment normalised; with a position embedding concatenated for the
  positional variant) -> `MAPPING_LAYERS` FC + LeakyReLU layers -> w.
- `FourierInput`: the synthesis starts from Fourier features sin(2 pi (f . x' + phase)) on the
  START x START grid; frequencies f are drawn once, uniform in direction and in radius over the band
  (0, Nyquist of that grid], phases uniform; x' = R x + t, the rotation R and translation t given by an
  affine of w (initialised to the identity transform), then a learned 1x1 mix of the features.
- `ModulatedConv`: StyleGAN2/3 weight modulation by a per-sample style (affine of w, bias 1) and
  demodulation (each output channel rescaled to unit expected norm).
- `filtered_lrelu`: the alias-suppressing non-linearity: upsample x2 (zero insertion + low-pass),
  leaky ReLU, low-pass + downsample x2. The low-pass filter is the separable 4-tap binomial kernel
  [1, 3, 3, 1] / 8 (not the paper's Kaiser-windowed sinc: at 8-32 px a 4-tap kernel is what fits).
Each resolution doubling upsamples x2 with the same filter before its modulated convolution; the last
layer is a modulated 1x1 conv without demodulation (toRGB), then tanh so samples lie in [-1, 1].
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from synth_pipeline.imaging.models._gan_nets import PositionEmbedding, level_channels

START = 8  # resolution of the Fourier-feature input
MAPPING_LAYERS = 2
LRELU_SLOPE = 0.2
BINOMIAL = (1.0, 3.0, 3.0, 1.0)


def _kernel(channels: int, gain: float, like: torch.Tensor) -> torch.Tensor:
    k = torch.tensor(BINOMIAL, dtype=like.dtype, device=like.device)
    k2 = torch.outer(k, k) / k.sum() ** 2 * gain
    return k2.expand(channels, 1, 4, 4).contiguous()


def upsample2(x: torch.Tensor) -> torch.Tensor:
    """x2: zero insertion then the binomial low-pass (gain 4 keeps the mean), (n, c, h, w) -> (n, c, 2h, 2w);
    the input's edges are replicated first so borders are filtered like the interior."""
    up = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), _kernel(x.shape[1], 4.0, x), stride=2,
                            padding=1, groups=x.shape[1])
    return up[:, :, 2:-2, 2:-2]


def downsample2(x: torch.Tensor) -> torch.Tensor:
    """/2: binomial low-pass then every second sample, (n, c, 2h, 2w) -> (n, c, h, w)."""
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), _kernel(x.shape[1], 1.0, x), stride=2,
                    groups=x.shape[1])


def filtered_lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU applied at twice the sampling rate, so the high frequencies it creates are filtered
    out before returning to the input rate (gain sqrt 2 as in StyleGAN)."""
    return downsample2(F.leaky_relu(upsample2(x), LRELU_SLOPE)) * math.sqrt(2.0)


def _normalise_2nd_moment(x: torch.Tensor) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, w_dim: int, pos_dim: int = 0) -> None:
        super().__init__()
        self.embed = PositionEmbedding(pos_dim) if pos_dim else None
        layers: list[nn.Module] = []
        dim = z_dim + pos_dim
        for _ in range(MAPPING_LAYERS):
            layers += [nn.Linear(dim, w_dim), nn.LeakyReLU(LRELU_SLOPE)]
            dim = w_dim
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, position: torch.Tensor | None = None) -> torch.Tensor:
        z = _normalise_2nd_moment(z)
        if self.embed is not None:
            z = torch.cat([z, _normalise_2nd_moment(self.embed(position))], dim=1)
        return self.net(z)


class FourierInput(nn.Module):
    def __init__(self, w_dim: int, channels: int, size: int = START) -> None:
        super().__init__()
        angle = torch.rand(channels) * 2 * math.pi
        radius = torch.rand(channels) * (size / 4)  # Nyquist of `size` samples over [-1, 1]: size/4 cycles per unit
        self.register_buffer("freqs", torch.stack([torch.cos(angle), torch.sin(angle)], 1) * radius[:, None])
        self.register_buffer("phases", torch.rand(channels) - 0.5)
        axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
        yy, xx = torch.meshgrid(axis, axis, indexing="ij")
        self.register_buffer("grid", torch.stack([xx, yy], -1))  # (size, size, 2)
        self.transform = nn.Linear(w_dim, 4)  # (cos-like, sin-like, tx, ty)
        nn.init.zeros_(self.transform.weight)
        with torch.no_grad():
            self.transform.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.mix = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        t = self.transform(w)
        rot = t[:, :2] / t[:, :2].norm(dim=1, keepdim=True).clamp_min(1e-8)
        c, s = rot[:, 0, None, None], rot[:, 1, None, None]
        x, y = self.grid[..., 0], self.grid[..., 1]
        xr = torch.stack([c * x - s * y + t[:, 2, None, None], s * x + c * y + t[:, 3, None, None]], -1)
        angles = (xr.unsqueeze(1) * self.freqs[None, :, None, None, :]).sum(-1) + self.phases[None, :, None, None]
        return self.mix(torch.sin(2 * math.pi * angles))


class ModulatedConv(nn.Module):
    def __init__(self, cin: int, cout: int, w_dim: int, kernel: int = 3, demodulate: bool = True) -> None:
        super().__init__()
        self.out_channels = cout
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) / math.sqrt(cin * kernel * kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.style = nn.Linear(w_dim, cin)
        nn.init.ones_(self.style.bias)
        self.demodulate = demodulate

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.style(w)  # (n, cin)
        out = F.conv2d(x * s[:, :, None, None], self.weight, padding=self.weight.shape[-1] // 2)
        if self.demodulate:
            d = (self.weight.square().sum((2, 3))[None] * s.square()[:, None]).sum(2).add(1e-8).rsqrt()
            out = out * d[:, :, None, None]
        return out + self.bias[None, :, None, None]


class StyleGenerator(nn.Module):
    """z (and position) -> w -> Fourier features at START^2 -> [x2 upsample ->] modulated 3x3 conv ->
    filtered leaky ReLU per resolution up to `size` -> modulated 1x1 toRGB (`head`) -> tanh."""

    def __init__(self, size: int, channels: int, width: int, z_dim: int, pos_dim: int = 0) -> None:
        super().__init__()
        chans = level_channels(size, width)[1:]  # START=8, 16, ..., size
        self.mapping = MappingNetwork(z_dim, z_dim, pos_dim)
        self.input = FourierInput(z_dim, chans[0])
        self.layers = nn.ModuleList(ModulatedConv(a, b, z_dim) for a, b in zip([chans[0], *chans], chans))
        self.head = ModulatedConv(chans[-1], channels, z_dim, kernel=1, demodulate=False)

    def forward(self, z: torch.Tensor, position: torch.Tensor | None = None) -> torch.Tensor:
        w = self.mapping(z, position)
        x = self.input(w)
        for i, layer in enumerate(self.layers):
            if i > 0:
                x = upsample2(x)
            x = filtered_lrelu(layer(x, w))
        return torch.tanh(self.head(x, w))
