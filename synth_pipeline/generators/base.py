"""Common generator interface and the registry that makes a new generator one registered class.

A fitted generator lives in a directory it writes itself: `generator.json` (name, params, schema)
plus whatever state files the family needs. Nothing the pipeline loads back is an unverified pickle.
"""

import json
from pathlib import Path
from typing import ClassVar, Protocol

import pandas as pd

from synth_pipeline.errors import BadInput
from synth_pipeline.schema import Schema


class Generator(Protocol):
    name: ClassVar[str]
    summary: ClassVar[str]

    def fit(self, table: pd.DataFrame, schema: Schema, *, target: str | None, seed: int) -> None: ...

    def sample(self, n: int, *, seed: int, conditions: pd.DataFrame | None = None) -> pd.DataFrame: ...

    def save(self, path: Path) -> None: ...

    @classmethod
    def load(cls, path: Path) -> "Generator": ...


REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: `@register` is all a new generator needs to be selectable by name."""
    REGISTRY[cls.name] = cls
    return cls


def _ensure_loaded() -> None:
    import synth_pipeline.generators  # noqa: F401  (importing the package registers every family)


def available() -> dict[str, str]:
    _ensure_loaded()
    return {name: REGISTRY[name].summary for name in sorted(REGISTRY)}


def make_generator(name: str, **params) -> Generator:
    _ensure_loaded()
    if name not in REGISTRY:
        raise BadInput(f"unknown generator '{name}'; choose one of: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name](**params)


def load_generator(path: Path) -> Generator:
    _ensure_loaded()
    meta = json.loads((Path(path) / "generator.json").read_text())
    return REGISTRY[meta["name"]].load(Path(path))
