"""Common interface of the slice generators and the registry that makes a new one a registered class.

    gen = make_image_generator("diffusion", budget="tiny", device="cpu")
    gen.fit(train_slices, seed=0)                 # SliceSet, images (n, 1, H, W) in [-1, 1]
    images = gen.sample(positions, seed=1)        # float32 (len(positions), 1, H, W) in [-1, 1]
    gen.save(folder); same = load_image_generator(folder)

`positions` (floats in [0, 1]) are honoured by position-conditioned models; unconditional models
ignore them (their samples then carry the requested positions only as labels). A saved generator is
`generator.json` (name, params, image size, sha256 of every state file) plus torch state_dicts, read
back with weights_only=True after the hashes are checked: nothing is ever unpickled.
"""

import json
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from synth_pipeline.errors import BadInput, GeneratorError
from synth_pipeline.hashing import file_sha256
from synth_pipeline.imaging.slices import SliceSet
from synth_pipeline.registry import Registry

META_FILE = "generator.json"
WEIGHTS_FILE = "weights.pt"
BUDGETS = ("tiny", "default", "full")

_REGISTRY = Registry("MRI model", "synth_pipeline.imaging.models", META_FILE)
REGISTRY = _REGISTRY.classes
register = _REGISTRY.register  # class decorator: `@register` makes a slice generator selectable by name
available_image_generators = _REGISTRY.available
load_image_generator = _REGISTRY.load


def make_image_generator(name: str, *, device: str | None = None, **params: Any) -> "ImageGenerator":
    budget = params.get("budget", "default")
    if budget not in BUDGETS:
        raise BadInput(f"unknown budget '{budget}'; choose one of: {', '.join(BUDGETS)}")
    return _REGISTRY.make(name, device=device, **params)


class ImageGenerator:
    """Shared plumbing. A model implements `_build(size)` (create its torch modules, return them by
    name), `_fit(train, seed, checkpoint_dir)` and `_sample(positions, seed)`; `conditional` says
    whether it honours positions. `params` must be JSON (they are saved and passed back on load).
    A torch model passes `self.on_step` (set by `fit`) on to `nn.training.train`."""

    name: ClassVar[str]
    summary: ClassVar[str]
    conditional: ClassVar[bool] = False
    # What a parameter added later meant for models saved before it existed (their params lack it).
    saved_before: ClassVar[dict[str, Any]] = {}

    def __init__(self, budget: str = "default", **params: Any) -> None:
        self.budget = budget
        self.device = "cpu"  # set by make_image_generator / load_image_generator (the run's ComputeDevice)
        self.params: dict[str, Any] = params
        self.size: int | None = None
        self.modules: dict[str, Any] = {}
        self.history: list[dict[str, float]] = []
        self.on_step: Callable[[], bool] | None = None

    # ---- model hooks --------------------------------------------------------------------------
    def _build(self, size: int) -> dict[str, Any]:
        raise NotImplementedError

    def _fit(self, train: SliceSet, seed: int, checkpoint_dir: Path | None) -> None:
        raise NotImplementedError

    def _sample(self, positions: np.ndarray, seed: int) -> np.ndarray:
        raise NotImplementedError

    # ---- public interface ---------------------------------------------------------------------
    def fit(self, train: SliceSet, *, seed: int, checkpoint_dir: Path | None = None,
            on_step: Callable[[], bool] | None = None) -> None:
        """`on_step`: called after every optimisation step, True stops training (nn.training.train)."""
        if len(train) == 0:
            raise GeneratorError(f"{self.name}: no training slices")
        if train.images.shape[-1] != train.images.shape[-2]:
            raise GeneratorError(f"{self.name}: slices must be square, got {train.images.shape[-2:]}")
        self.size = train.size
        self.modules = self._build(self.size)
        self.on_step = on_step
        try:
            self._fit(train, seed, checkpoint_dir)
        finally:
            self.on_step = None

    def sample(self, positions: np.ndarray, *, seed: int) -> np.ndarray:
        if self.size is None:
            raise GeneratorError(f"{self.name}: sample() before fit()")
        positions = np.asarray(positions, dtype=np.float32).reshape(-1)
        if len(positions) and (positions.min() < 0 or positions.max() > 1):
            raise BadInput(f"{self.name}: positions must lie in [0, 1]")
        out = np.asarray(self._sample(positions, seed), dtype=np.float32)
        if out.shape != (len(positions), 1, self.size, self.size):
            raise GeneratorError(f"{self.name}: sampled shape {out.shape}, expected "
                                 f"{(len(positions), 1, self.size, self.size)}")
        return np.clip(out, -1.0, 1.0)

    def save(self, path: Path) -> None:
        import torch

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {n: {k: v.detach().cpu() for k, v in m.state_dict().items()} for n, m in self.modules.items()}
        torch.save(state, path / WEIGHTS_FILE)
        meta = {"name": self.name, "budget": self.budget, "params": self.params, "size": self.size,
                "history": self.history, "files": {WEIGHTS_FILE: file_sha256(path / WEIGHTS_FILE)}}
        (path / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> "ImageGenerator":
        import torch

        path = Path(path)
        meta = json.loads((path / META_FILE).read_text())
        for fname, digest in meta["files"].items():
            if file_sha256(path / fname) != digest:
                raise GeneratorError(f"{path / fname}: sha256 differs from {META_FILE}; refusing to load")
        gen = cls(budget=meta["budget"], **{**cls.saved_before, **meta["params"]})
        gen.device = device
        gen.size = meta["size"]
        gen.history = meta.get("history", [])
        gen.modules = gen._build(gen.size)
        state = torch.load(path / WEIGHTS_FILE, map_location=device, weights_only=True)
        for n, m in gen.modules.items():
            m.load_state_dict(state[n])
            m.eval()
        return gen
