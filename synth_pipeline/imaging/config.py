"""Typed configuration of one MRI release run, recorded whole in its manifest."""

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from synth_pipeline.config import Settings, ThresholdSet, read_json_config

SIZES = (32, 64, 128)


class MriThresholds(ThresholdSet):
    """Image gates. Memorisation (pixel and feature space) is judged like the tabular DCR gate's
    memorisation rate: a fresh real sample scores 0.05. `fid_ratio_max`
    bounds FID(synthetic, holdout) / FID(noise reference, holdout): a generator must be much closer to
    real slices than structured noise is (None switches the fidelity gate off)."""

    memorisation_max: float = Field(0.10, ge=0.0, le=1.0)
    fid_ratio_max: float | None = Field(0.5, ge=0.0, le=1.0)


class MriConfig(Settings):
    data: str = Field("default", description="'default' (the bundled MNI152 pseudo-cohort) or a folder of NIfTI volumes")
    model: str = "diffusion"
    budget: str = "default"
    model_params: dict[str, Any] = {}
    seed: int = Field(0, ge=0)
    size: int = Field(32, description=f"slice size in pixels, one of {SIZES}")
    holdout_fraction: float = Field(0.3, ge=0.1, le=0.5)
    cohort_subjects: int = Field(12, ge=4)
    n_samples: int | None = Field(None, ge=10, description="None: one synthetic slice per holdout slice, at the same position")
    thresholds: MriThresholds = MriThresholds()

    @field_validator("size")
    @classmethod
    def _size(cls, v: int) -> int:
        if v not in SIZES:
            raise ValueError(f"size {v} must be one of {SIZES}")
        return v

    def overrides(self) -> list[dict[str, Any]]:
        return self.thresholds.overrides()


def mri_gate_settings_sha256(cfg: MriConfig) -> str:
    """Digest of what an image gate verdict depends on besides the images: thresholds and seed."""
    body = {"thresholds": cfg.thresholds.model_dump(), "seed": cfg.seed}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def load_mri_config(path: Path | None) -> MriConfig:
    return read_json_config(path, MriConfig)
