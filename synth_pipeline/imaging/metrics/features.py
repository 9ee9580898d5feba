"""The feature network behind FID, KID and feature-space memorisation.

No Inception-v3 weights ship in an installed package (pytorch-fid, torch-fidelity, clean-fid,
torchmetrics and piq all download them at run time) and torchvision cannot be installed here, so the
default network is a compact Inception-style stack whose weights are drawn from a fixed seed: a
random embedding, the documented alternative for domains far from ImageNet (Naeem et al. 2020,
"Reliable Fidelity and Diversity Metrics for Generative Models", ICML). The weights come from
numpy's legacy `RandomState`, whose stream numpy guarantees never to change, so they are identical
on every machine and torch version; `RANDOM_WEIGHTS_SHA256` pins them. A trained state_dict of the
same architecture can be given with `weights_path` (read locally, never downloaded). Every result
records which network produced it (`info()`): numbers from different networks are not comparable.

Input: slices in [-1, 1], resized (bilinear, antialiased when shrinking) to INPUT_SIZE x INPUT_SIZE,
one channel. Output: FEATURE_DIM global-average-pooled activations of the last block.
"""

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from synth_pipeline.errors import BadInput
from synth_pipeline.nn.training import num_threads
from synth_pipeline.imaging.slices import SliceSet

ARCH = "inception-lite-96"
INPUT_SIZE = 96
FEATURE_DIM = 256
SEED = 20200227  # Naeem et al. 2020 arXiv date; any fixed number would do
RANDOM_WEIGHTS_SHA256 = "69f5c485bbce4ec2e79855ca03a3e587fa400e0ae484b81d0269149f9ecdd76d"
CACHED_SETS = 8


def _conv(cin: int, cout: int, k, stride: int = 1) -> nn.Sequential:
    pad = (k[0] // 2, k[1] // 2) if isinstance(k, tuple) else k // 2
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=pad), nn.ReLU())


class _InceptionA(nn.Module):
    """Inception-v3's A block: 1x1, 1x1->3x3, 1x1->3x3->3x3 and pool->1x1 branches, concatenated."""

    def __init__(self, cin: int, b1: int, b3: tuple[int, int], b33: tuple[int, int], bp: int) -> None:
        super().__init__()
        self.b1 = _conv(cin, b1, 1)
        self.b3 = nn.Sequential(_conv(cin, b3[0], 1), _conv(b3[0], b3[1], 3))
        self.b33 = nn.Sequential(_conv(cin, b33[0], 1), _conv(b33[0], b33[1], 3), _conv(b33[1], b33[1], 3))
        self.bp = _conv(cin, bp, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(x, 3, stride=1, padding=1)
        return torch.cat([self.b1(x), self.b3(x), self.b33(x), self.bp(pooled)], dim=1)


class _Reduction(nn.Module):
    """Inception-v3's grid reduction: strided 3x3, strided 1x1->3x3->3x3 and max-pool, concatenated."""

    def __init__(self, cin: int, b3: int, b33: tuple[int, int]) -> None:
        super().__init__()
        self.b3 = _conv(cin, b3, 3, stride=2)
        self.b33 = nn.Sequential(_conv(cin, b33[0], 1), _conv(b33[0], b33[1], 3), _conv(b33[1], b33[1], 3, stride=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b3(x), self.b33(x), F.max_pool2d(x, 3, stride=2, padding=1)], dim=1)


class InceptionLite(nn.Module):
    """96 -> stem (48, then 24 after pooling) -> two A blocks -> reduction (12) -> A block -> GAP."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv(1, 32, 3, stride=2), _conv(32, 48, 3), nn.MaxPool2d(3, stride=2, padding=1))
        self.blocks = nn.Sequential(
            _InceptionA(48, 24, (16, 32), (16, 24), 16),     # 96 channels
            _InceptionA(96, 32, (32, 48), (24, 32), 16),     # 128
            _Reduction(128, 96, (32, 48)),                   # 96 + 48 + 128 = 272, 12 x 12
            _InceptionA(272, 64, (48, 96), (48, 64), 32),    # 256 = FEATURE_DIM
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x)).mean(dim=(2, 3))


def _random_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """He-normal conv weights (std sqrt(2 / fan_in), keeps ReLU activations at a stable scale through
    the depth), zero biases, drawn in state_dict order from one RandomState(SEED)."""
    rs = np.random.RandomState(SEED)
    out = {}
    for name, t in module.state_dict().items():
        if name.endswith("weight"):
            fan_in = int(np.prod(t.shape[1:]))
            w = rs.standard_normal(tuple(t.shape)) * np.sqrt(2.0 / fan_in)
            out[name] = torch.from_numpy(w.astype(np.float32))
        else:
            out[name] = torch.zeros(t.shape, dtype=torch.float32)
    return out


def weights_sha256(module: nn.Module) -> str:
    """sha256 over every tensor's name, shape and float32 little-endian bytes, in state_dict order."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(f"{name}:{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().numpy().astype("<f4").tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class FeatureNet:
    module: nn.Module
    net_id: str
    sha256: str
    # Features of the last CACHED_SETS image sets, keyed by a hash of their bytes: one evaluation scores
    # the holdout and train sets in FID, the reference FIDs and memorisation; each is computed once.
    cache: OrderedDict = field(default_factory=OrderedDict, repr=False, compare=False)

    def info(self) -> dict:
        return {"feature_net": self.net_id, "feature_net_sha256": self.sha256,
                "feature_input_size": INPUT_SIZE, "feature_dim": FEATURE_DIM}


@lru_cache(maxsize=1)
def _default_net() -> FeatureNet:
    module = InceptionLite()
    module.load_state_dict(_random_state_dict(module))
    module.eval()
    sha = weights_sha256(module)
    if sha != RANDOM_WEIGHTS_SHA256:  # would mean numpy's RandomState stream or the architecture changed
        raise RuntimeError(f"feature net: seeded weights hash {sha[:12]} differs from the pinned "
                           f"{RANDOM_WEIGHTS_SHA256[:12]}; FID/KID would not be comparable with earlier runs")
    return FeatureNet(module, f"{ARCH}-random-seed{SEED}", sha)


def feature_net(weights_path: Path | None = None) -> FeatureNet:
    """The seeded random network, or the same architecture with a local state_dict."""
    if weights_path is None:
        return _default_net()
    path = Path(weights_path)
    if not path.is_file():
        raise BadInput(f"{path}: feature-net weights file not found")
    module = InceptionLite()
    try:
        module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (RuntimeError, ValueError, KeyError) as e:
        raise BadInput(f"{path}: not a state_dict of {ARCH} ({str(e).splitlines()[0]})") from None
    module.eval()
    return FeatureNet(module, f"{ARCH}:{path.name}", weights_sha256(module))


def as_images(x: "SliceSet | np.ndarray", what: str = "images") -> np.ndarray:
    """The (n, 1, H, W) float32 array of a SliceSet or an array; BadInput for any other shape."""
    images = np.asarray(x.images if isinstance(x, SliceSet) else x, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] != 1 or len(images) == 0:
        raise BadInput(f"{what}: expected a non-empty (n, 1, H, W) array, got shape {images.shape}")
    return images


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    shrink = images.shape[-1] > size or images.shape[-2] > size
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


def extract(x: "SliceSet | np.ndarray", net: FeatureNet | None = None, *, batch_size: int = 250,
            threads: int | None = 1) -> np.ndarray:
    """(n, FEATURE_DIM) float64 features, batch by batch on one CPU thread (the machine is shared)."""
    images = np.ascontiguousarray(as_images(x))
    net = net or feature_net()
    key = hashlib.sha256(str(images.shape).encode() + images.tobytes()).hexdigest()
    hit = net.cache.get(key)
    if hit is not None:
        return hit.copy()
    out = np.empty((len(images), FEATURE_DIM))
    with torch.no_grad(), num_threads(threads):
        for lo in range(0, len(images), batch_size):
            batch = resize(torch.from_numpy(images[lo : lo + batch_size]), INPUT_SIZE)
            out[lo : lo + batch_size] = net.module(batch).double().numpy()
    net.cache[key] = out
    while len(net.cache) > CACHED_SETS:
        net.cache.popitem(last=False)
    return out.copy()
