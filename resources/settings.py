"""Run settings as a Dagster resource: the UI/launchpad face of synth_pipeline.config.RunConfig."""

import json

import dagster as dg

from synth_pipeline.config import RunConfig, Thresholds
from synth_pipeline.imaging.config import MriConfig, MriThresholds


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
    on_identifiers: str = "drop"

    def run_config(self) -> RunConfig:
        d = self.model_dump()
        thresholds = {k: d.pop(k) for k in Thresholds.__dataclass_fields__}
        d["generator_params"] = json.loads(d.pop("generator_params_json"))
        return RunConfig.from_dict({**d, "thresholds": thresholds})

    @classmethod
    def from_run_config(cls, cfg: RunConfig) -> "PipelineSettings":
        d = cfg.to_dict()
        d.update(d.pop("thresholds"))
        d["generator_params_json"] = json.dumps(d.pop("generator_params"), sort_keys=True)
        return cls(**d)


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
        d = self.model_dump()
        thresholds = {k: d.pop(k) for k in MriThresholds.__dataclass_fields__}
        d["model_params"] = json.loads(d.pop("model_params_json"))
        return MriConfig.from_dict({**d, "thresholds": thresholds})

    @classmethod
    def from_mri_config(cls, cfg: MriConfig) -> "MriSettings":
        d = cfg.to_dict()
        d.update(d.pop("thresholds"))
        d["model_params_json"] = json.dumps(d.pop("model_params"), sort_keys=True)
        return cls(**d)
