"""Typed configuration of one MRI release run, recorded whole in its manifest."""

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from synth_pipeline.config import checked_fields, read_json_config
from synth_pipeline.errors import BadInput

SIZES = (32, 64, 128)


@dataclass(frozen=True)
class MriThresholds:
    """Image gates. Memorisation (pixel and feature space) is judged like the tabular DCR gate's
    memorisation rate: a fresh real sample scores 0.05. `fid_ratio_max`
    bounds FID(synthetic, holdout) / FID(noise reference, holdout): a generator must be much closer to
    real slices than structured noise is (None switches the fidelity gate off)."""

    memorisation_max: float = 0.10
    fid_ratio_max: float | None = 0.5


@dataclass(frozen=True)
class MriConfig:
    data: str = "default"  # "default" (the bundled MNI152 pseudo-cohort) or a folder of NIfTI volumes
    model: str = "diffusion"
    budget: str = "default"
    model_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    size: int = 32
    holdout_fraction: float = 0.3
    cohort_subjects: int = 12
    n_samples: int | None = None  # None: one synthetic slice per holdout slice, at the same position
    thresholds: MriThresholds = field(default_factory=MriThresholds)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MriConfig":
        cfg = cls(**checked_fields(cls, d, MriThresholds))
        cfg.validate()
        return cfg

    def with_overrides(self, **kw: Any) -> "MriConfig":
        cfg = replace(self, **{k: v for k, v in kw.items() if v is not None})
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.size not in SIZES:
            raise BadInput(f"config: size {self.size} must be one of {SIZES}")
        if not 0.1 <= self.holdout_fraction <= 0.5:
            raise BadInput(f"config: holdout_fraction {self.holdout_fraction} must be in [0.1, 0.5]")
        if self.n_samples is not None and self.n_samples < 10:
            raise BadInput(f"config: n_samples must be >= 10, got {self.n_samples}")
        if self.cohort_subjects < 4:
            raise BadInput(f"config: cohort_subjects must be >= 4, got {self.cohort_subjects}")


def mri_gate_settings_sha256(cfg: MriConfig) -> str:
    """Digest of what an image gate verdict depends on besides the images: thresholds and seed."""
    body = {"thresholds": asdict(cfg.thresholds), "seed": cfg.seed}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def load_mri_config(path: Path | None) -> MriConfig:
    return read_json_config(path, MriConfig)
