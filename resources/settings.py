"""Run settings as a Dagster resource: the UI/launchpad face of synth_pipeline.config.RunConfig."""

import json

import dagster as dg

from synth_pipeline.config import RunConfig, Thresholds


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
