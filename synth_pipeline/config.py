"""Typed run configuration: what to release, how, and the gate thresholds. Recorded whole in every
manifest, so an auditor can re-run exactly what was run."""

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from synth_pipeline.errors import BadInput


@dataclass(frozen=True)
class Thresholds:
    """Gate thresholds (DESIGN.md). A candidate publishes only when every one holds."""

    memorisation_max: float = 0.10
    dcr_share_max: float = 0.60
    linkability_ci_high_max: float = 0.09
    tstr_ratio_min: float = 0.90
    inference_ci_low_max: float = 0.25  # inference_gate; benchmarks/PRIVACY_GATES.md says why


@dataclass(frozen=True)
class RunConfig:
    data: str = "flchain"
    target: str | None = None
    generator: str = "gaussian_copula"
    generator_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    n_rows: int | None = None
    conditions: dict[str, str] = field(default_factory=dict)
    holdout_fraction: float = 0.3
    drop: tuple[str, ...] = ()
    id_columns: tuple[str, ...] = ()
    column_kinds: dict[str, str] = field(default_factory=dict)
    link_attacks: int = 1000
    link_neighbors: int = 5
    thresholds: Thresholds = field(default_factory=Thresholds)
    on_identifiers: str = "drop"  # direct identifiers detected in file data: "drop" (noted) | "refuse"
    sensitive_columns: tuple[str, ...] = ()  # attacked by inference_gate, besides the target and the schema's

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["drop"] = list(self.drop)
        d["id_columns"] = list(self.id_columns)
        d["sensitive_columns"] = list(self.sensitive_columns)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        d = checked_fields(cls, d, Thresholds)
        for k in ("drop", "id_columns", "sensitive_columns"):
            if k in d:
                d[k] = tuple(d[k])
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def with_overrides(self, **kw: Any) -> "RunConfig":
        cfg = replace(self, **{k: v for k, v in kw.items() if v is not None})
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if not 0.05 <= self.holdout_fraction <= 0.5:
            raise BadInput(f"config: holdout_fraction {self.holdout_fraction} must be in [0.05, 0.5]")
        if self.n_rows is not None and self.n_rows < 1:
            raise BadInput(f"config: n_rows must be positive, got {self.n_rows}")
        if len(self.conditions) > 1 or (self.conditions and self.target and set(self.conditions) != {self.target}):
            raise BadInput(f"config: conditions {self.conditions} must name only the target column")
        if self.on_identifiers not in ("drop", "refuse"):
            raise BadInput(f"config: on_identifiers {self.on_identifiers!r} must be 'drop' or 'refuse'")
        if self.link_attacks < 10:
            raise BadInput(f"config: link_attacks must be >= 10, got {self.link_attacks}")
        if not 0.0 <= self.thresholds.inference_ci_low_max <= 1.0:
            raise BadInput(f"config: inference_ci_low_max {self.thresholds.inference_ci_low_max} must be in [0, 1]")


def gate_settings_sha256(cfg: RunConfig) -> str:
    """Digest of everything a gate verdict depends on besides the data: thresholds, attack count,
    seed and the declared sensitive columns. A check result computed under other settings must not release this candidate."""
    body = {"thresholds": asdict(cfg.thresholds), "link_attacks": cfg.link_attacks,
            "link_neighbors": cfg.link_neighbors, "seed": cfg.seed, "sensitive_columns": list(cfg.sensitive_columns)}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def checked_fields(cls: type, d: dict[str, Any], thresholds_cls: type) -> dict[str, Any]:
    """`d` with its "thresholds" built as `thresholds_cls`, after refusing any key neither class knows
    (a typo in a config must fail loudly, not fall back to a default)."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise BadInput(f"config: unknown key(s) {unknown}; known: {sorted(known)}")
    d = dict(d)
    if "thresholds" in d:
        tk = {f.name for f in fields(thresholds_cls)}
        bad = sorted(set(d["thresholds"]) - tk)
        if bad:
            raise BadInput(f"config: unknown threshold(s) {bad}; known: {sorted(tk)}")
        d["thresholds"] = thresholds_cls(**d["thresholds"])
    return d


def read_json_config(path: Path | None, cls: type) -> Any:
    """Read a JSON config file into `cls` (via its from_dict); no file means the defaults."""
    if path is None:
        return cls()
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p}: config file not found")
    try:
        return cls.from_dict(json.loads(p.read_text()))
    except json.JSONDecodeError as e:
        raise BadInput(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from None


def load_config(path: Path | None) -> RunConfig:
    """Read a JSON run config (keys as in RunConfig); no file means the defaults."""
    return read_json_config(path, RunConfig)
