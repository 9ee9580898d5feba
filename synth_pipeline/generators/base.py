"""Common generator interface and the registry that makes a new generator one registered class.

A fitted generator lives in a directory it writes itself: `generator.json` (name, params, schema,
target, classes, and the sha256 of every state file) plus whatever state files the family needs.
`load` verifies every hash before reading a file, so nothing is ever unpickled unless it is byte for
byte the artefact this pipeline wrote.

`BaseGenerator` holds what every family shares (input checks, seeding, conditions, the output contract,
save/load bookkeeping); a family implements `_fit`, `_draw`, `_save_state` and `_load_state`.
"""

import json
import random
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd

from synth_pipeline.errors import GeneratorError
from synth_pipeline.hashing import file_sha256, parquet_bytes
from synth_pipeline.registry import Registry
from synth_pipeline.schema import Schema, conform

META_FILE = "generator.json"


class Generator(Protocol):
    name: ClassVar[str]
    summary: ClassVar[str]
    # The near-copy floor (near_copies.distance_floor) the pipeline applies to this family's rows when
    # the run config sets none; chosen per family from benchmarks/GENERATORS.md (Diffusion at equal privacy).
    near_copy_quantile: ClassVar[float] = 0.0

    def fit(self, table: pd.DataFrame, schema: Schema, *, target: str | None, seed: int) -> None: ...

    def sample(self, n: int, *, seed: int, conditions: pd.DataFrame | None = None) -> pd.DataFrame: ...

    def save(self, path: Path) -> None: ...

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> "Generator": ...


_REGISTRY = Registry("generator", "synth_pipeline.generators", META_FILE)
REGISTRY = _REGISTRY.classes
register = _REGISTRY.register  # class decorator: `@register` makes a generator selectable by name
available = _REGISTRY.available


def make_generator(name: str, *, device: str | None = None, **params) -> Generator:
    return _REGISTRY.make(name, device=device, **params)


def load_generator(path: Path, *, device: str | None = None) -> Generator:
    return _REGISTRY.load(path, device=device)


def seed_everything(seed: int) -> None:
    """Seed the global RNGs the libraries draw from (SDV, RDT, CTGAN and imblearn's helpers use them)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    import torch

    torch.manual_seed(seed)


class BaseGenerator:
    """Shared fit/sample/save/load plumbing; subclasses stay thin wrappers over their library."""

    name: ClassVar[str]
    summary: ClassVar[str]

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = params
        self.device = "cpu"  # set by make_generator / load_generator (the run's ComputeDevice)
        self.schema: Schema | None = None
        self.target: str | None = None
        self.classes: list[str] = []

    # ---- family hooks -------------------------------------------------------------------------
    def _fit(self, table: pd.DataFrame, seed: int) -> None:
        raise NotImplementedError

    def _draw(self, k: int, seed: int, label: str | None) -> pd.DataFrame:
        """k rows; all of class `label` when it is given (already checked to be a training class)."""
        raise NotImplementedError

    def _save_state(self, path: Path) -> list[str]:
        """Write the state files into `path`; return their names (hashed into generator.json)."""
        raise NotImplementedError

    def _load_state(self, path: Path) -> None:
        raise NotImplementedError

    # ---- public interface ---------------------------------------------------------------------
    def fit(self, table: pd.DataFrame, schema: Schema, *, target: str | None, seed: int) -> None:
        if target is not None and target not in schema.names:
            raise GeneratorError(f"{self.name}: target '{target}' is not a schema column")
        if len(table) == 0:
            raise GeneratorError(f"{self.name}: cannot fit on an empty table")
        self.schema, self.target = schema, target
        table = conform(table, schema)
        categorical_target = target is not None and schema.column(target).kind == "categorical"
        self.classes = sorted(table[target].dropna().unique()) if categorical_target else []
        seed_everything(seed)
        self._fit(table, seed)

    def sample(self, n: int, *, seed: int, conditions: pd.DataFrame | None = None) -> pd.DataFrame:
        if self.schema is None:
            raise GeneratorError(f"{self.name}: sample() called before fit() or load()")
        if n < 1:
            raise GeneratorError(f"{self.name}: cannot sample {n} rows")
        seed_everything(seed)
        if conditions is None:
            out = conform(self._draw(n, seed, None), self.schema)
        else:
            labels = self._condition_labels(conditions, n)
            parts = []
            for label in sorted(set(labels)):
                rows = np.flatnonzero(labels == label)
                part = conform(self._draw(len(rows), seed, label), self.schema)
                if len(part) != len(rows):
                    raise GeneratorError(
                        f"{self.name}: produced {len(part)} rows of class '{label}', {len(rows)} requested"
                    )
                parts.append(part.set_axis(rows))
            out = pd.concat(parts).sort_index().reset_index(drop=True)
        if len(out) != n:
            raise GeneratorError(f"{self.name}: produced {len(out)} rows, {n} requested")
        return out

    def _condition_labels(self, conditions: pd.DataFrame, n: int) -> np.ndarray:
        """The requested class of each output row: one condition row per output row, or one for all."""
        if self.target is None or not self.classes:
            raise GeneratorError(f"{self.name}: conditions need a categorical target; this fit has none")
        extra = [c for c in conditions.columns if c != self.target]
        if self.target not in conditions.columns or extra:
            raise GeneratorError(
                f"{self.name}: conditions must have exactly the target column '{self.target}' "
                f"(got {list(conditions.columns)})"
            )
        if len(conditions) not in (1, n):
            raise GeneratorError(f"{self.name}: {len(conditions)} condition rows for {n} rows; give 1 or {n}")
        values = conform(conditions, Schema("conditions", self.target, (self.schema.column(self.target),)))
        labels = np.resize(values[self.target].to_numpy(dtype=object), n)
        unknown = sorted({str(v) for v in labels if pd.isna(v) or v not in self.classes})
        if unknown:
            raise GeneratorError(f"{self.name}: conditions ask for classes not in training: {unknown}")
        return labels

    def save(self, path: Path) -> None:
        if self.schema is None:
            raise GeneratorError(f"{self.name}: save() called before fit()")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        files = {f: file_sha256(path / f) for f in self._save_state(path)}
        meta = {
            "name": self.name,
            "params": self.params,
            "schema": self.schema.to_dict(),
            "target": self.target,
            "classes": self.classes,
            "files": files,
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> "BaseGenerator":
        path = Path(path)
        meta = json.loads((path / META_FILE).read_text())
        if meta["name"] != cls.name:
            raise GeneratorError(f"{path}: holds generator '{meta['name']}', not '{cls.name}'")
        for f, digest in meta["files"].items():
            if not (path / f).is_file() or file_sha256(path / f) != digest:
                raise GeneratorError(f"{cls.name}: {path / f} is missing or differs from its recorded sha256")
        gen = cls(**meta["params"])
        gen.device = device
        gen.schema = Schema.from_dict(meta["schema"])
        gen.target = meta["target"]
        gen.classes = list(meta["classes"])
        gen._load_state(path)
        return gen


class TrainingRowsGenerator(BaseGenerator):
    """A generator that draws from the training rows themselves at sample time (resampling, controls).

    The rows are kept as Parquet in the generator's own directory, which is internal and never released.
    """

    ROWS_FILE = "training_rows.parquet"

    def _fit(self, table: pd.DataFrame, seed: int) -> None:
        self.rows = table

    def _class_rows(self, label: str | None) -> pd.DataFrame:
        return self.rows if label is None else self.rows[self.rows[self.target] == label]

    def _save_state(self, path: Path) -> list[str]:
        (path / self.ROWS_FILE).write_bytes(parquet_bytes(self.rows))
        return [self.ROWS_FILE]

    def _load_state(self, path: Path) -> None:
        self.rows = conform(pd.read_parquet(path / self.ROWS_FILE), self.schema)
