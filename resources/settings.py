"""Run settings as a Dagster resource: the UI/launchpad face of synth_pipeline.config.RunConfig."""

import json

import dagster as dg

from synth_pipeline.config import RunConfig, Thresholds
from synth_pipeline.imaging.config import MriConfig, MriThresholds


def _nested(flat: dict, thresholds_cls: type, params: str) -> dict:
    """A settings resource's flat fields -> the config dict: thresholds nested, `<params>_json` parsed
    (launchpad fields must be flat and typed; the core config nests them)."""
    d = dict(flat)
    thresholds = {k: d.pop(k) for k in thresholds_cls.__dataclass_fields__}
    d[params] = json.loads(d.pop(f"{params}_json"))
    return {**d, "thresholds": thresholds}


def _flat(config: dict, params: str) -> dict:
    d = dict(config)
    d.update(d.pop("thresholds"))
    d[f"{params}_json"] = json.dumps(d.pop(params), sort_keys=True)
    return d


class PipelineSettings(dg.ConfigurableResource):
    """What to release and how. Defaults are the product defaults (FLCHAIN, Gaussian copula)."""

    data: str = "flchain"
    target: str | None = None
    generator: str = "gaussian_copula"
    generator_params_json: str = "{}"
    seed: int = 0
    n_rows: int | None = None
    conditions: dict[str, str] = {}
    holdout_fraction: float = 0.3
    drop: list[str] = []
    id_columns: list[str] = []
    column_kinds: dict[str, str] = {}
    link_attacks: int = 1000
    link_neighbors: int = 5
    memorisation_max: float = Thresholds.memorisation_max
    dcr_share_max: float = Thresholds.dcr_share_max
    linkability_ci_high_max: float = Thresholds.linkability_ci_high_max
    tstr_ratio_min: float = Thresholds.tstr_ratio_min
    inference_ci_low_max: float = Thresholds.inference_ci_low_max
    on_identifiers: str = "drop"
    sensitive_columns: list[str] = []

    def run_config(self) -> RunConfig:
        return RunConfig.from_dict(_nested(self.model_dump(), Thresholds, "generator_params"))

    @classmethod
    def from_run_config(cls, cfg: RunConfig) -> "PipelineSettings":
        return cls(**_flat(cfg.to_dict(), "generator_params"))


class MriSettings(dg.ConfigurableResource):
    """What the MRI arm releases and how (the launchpad face of synth_pipeline.imaging.config.MriConfig)."""

    data: str = "default"
    model: str = "diffusion"
    budget: str = "default"
    model_params_json: str = "{}"
    seed: int = 0
    size: int = 32
    holdout_fraction: float = 0.3
    cohort_subjects: int = 12
    n_samples: int | None = None
    memorisation_max: float = MriThresholds.memorisation_max
    fid_ratio_max: float | None = MriThresholds.fid_ratio_max

    def mri_config(self) -> MriConfig:
        return MriConfig.from_dict(_nested(self.model_dump(), MriThresholds, "model_params"))

    @classmethod
    def from_mri_config(cls, cfg: MriConfig) -> "MriSettings":
        return cls(**_flat(cfg.to_dict(), "model_params"))
