"""Typed run configuration: what to release, how, and the gate thresholds. Recorded whole in every
manifest, so an auditor can re-run exactly what was run.

One pydantic model is the `--config` JSON, a catalogue entry's run fields (synth_pipeline/catalogue.py)
and the Dagster run config (resources/settings.py derives its fields from it). Values are strict (no
"0.1" string for a number, no bool for an int), finite, in range, and unknown keys are refused; any
violation is one BadInput line naming the field. Defaults are written here only."""

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synth_pipeline.errors import BadInput

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "config.schema.json"


def _unit(default: float, description: str) -> Any:
    """A gate threshold: a share or a ratio, so always within [0, 1]."""
    return Field(default, ge=0.0, le=1.0, description=description)


def _names(description: str) -> Any:
    """A list of column names (JSON arrays are accepted for the tuple; each item must be a string)."""
    return Field((), strict=False, description=description)


class Settings(BaseModel):
    """Shared base of the tabular and MRI configs: frozen, strict, finite, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False,
                              validate_default=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples as lists): what the manifest records and `from_dict` reads back."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "config") -> Any:
        """Validate `d`; any violation is one BadInput line naming `where` and the field."""
        try:
            return cls.model_validate(d)
        except ValidationError as e:
            raise BadInput(f"{where}: {explain(e, cls)}") from None

    def with_overrides(self, **kw: Any) -> Any:
        """A copy with the given fields replaced (None means "not given"), validated again."""
        return self.from_dict({**self.to_dict(), **{k: v for k, v in kw.items() if v is not None}})


class ThresholdSet(Settings):
    """Gate thresholds. A name ending in `_max` is an upper bound (looser = higher), `_min` a lower
    bound (looser = lower); None switches a gate off (looser than any value)."""

    def overrides(self) -> list[dict[str, Any]]:
        """Each threshold looser than its default: a deliberate override, recorded in the manifest
        and named on the report's first screen. Tightening is not an override."""
        out = []
        for name, info in type(self).model_fields.items():
            value, default = getattr(self, name), info.default
            if value == default:
                continue
            if value is None:
                looser = True
            elif default is None:
                looser = False
            else:
                looser = value > default if name.endswith("_max") else value < default
            if looser:
                out.append({"threshold": name, "value": value, "default": default,
                            "note": "gate off" if value is None else "looser than the default"})
        return out


def _margin(default: float, description: str) -> Any:
    """A fidelity margin below the real-sample floor. Capped at FIDELITY_MARGIN_CAP, under the deficit of
    one training row repeated on every table measured (benchmarks/GENERATORS.md, Coarse tables and the
    fidelity gate), so no config can switch the gate off."""
    return Field(default, ge=0.0, le=FIDELITY_MARGIN_CAP, description=description)


FIDELITY_MARGIN_CAP = 0.4


class Thresholds(ThresholdSet):
    """Gate thresholds (DESIGN.md). A candidate publishes only when every one holds."""

    memorisation_max: float = _unit(0.10, "dcr_gate: share of synthetic rows closer to train than the "
                                          "holdout's 5th-percentile DCR (a fresh real sample scores 0.05)")
    dcr_share_max: float = _unit(0.60, "dcr_gate: share of synthetic rows closer to train than to the holdout "
                                       "(0.5 is ideal)")
    linkability_ci_high_max: float = _unit(0.09, "linkability_gate: upper end of the 95% CI of anonymeter's "
                                                 "linkability risk (strictly below passes)")
    tstr_ratio_min: float = _unit(0.90, "tstr_gate: best TSTR AUROC / best TRTR AUROC")
    inference_ci_low_max: float = _unit(0.25, "inference_gate: lower end of the 95% CI of anonymeter's "
                                              "attribute-inference risk (benchmarks/PRIVACY_GATES.md)")
    fidelity_shape_margin_max: float = _margin(0.25, "fidelity_gate: column shapes may sit at most this far below "
                                                     "the real holdout's own column shapes against train (the floor)")
    fidelity_trend_margin_max: float = _margin(0.25, "fidelity_gate: column pair trends may sit at most this far "
                                                     "below the real holdout's own pair trends against train")
    dcr_ci_width_max: float = Field(0.02, gt=0.0, le=1.0, description=(
        "dcr_gate: widest 95% Wilson interval allowed for the memorisation rate and DCR share; a table with "
        "more synthetic (or holdout) rows than that needs (9,600 at 0.02) is judged on a seeded sample of that "
        "many query rows against the full training table (README, How privacy metrics scale)"))


class RunConfig(Settings):
    """One tabular release run."""

    data: str = Field("flchain", description="bundled dataset name or a CSV / Parquet / ARFF path (unused with sql)")
    name: str | None = Field(None, description="dataset (release folder) name; default: the bundled name "
                                               "or the file's name")
    sql: str | None = Field(None, description="a query whose rows are the input (instead of `data`)")
    connection: str | None = Field(None, description="name of the environment variable holding the "
                                                     "SQLAlchemy URL `sql` runs on")
    target: str | None = None
    generator: str = Field("auto", description="generator name (`synth-pipeline generators`); `auto` fits a portfolio "
                                               "and publishes the most useful candidate that passes every gate")
    generator_params: dict[str, Any] = {}
    seed: int = Field(0, ge=0)
    n_rows: int | None = Field(None, ge=1, description="synthetic rows (default: as many as the training rows)")
    conditions: dict[str, str] = Field({}, description="{target: value}: sample only that class")
    holdout_fraction: float = Field(0.3, ge=0.05, le=0.5)
    drop: tuple[str, ...] = _names("columns removed before training (e.g. leaky outcomes)")
    id_columns: tuple[str, ...] = _names("identifier columns removed before training")
    sensitive_columns: tuple[str, ...] = _names("columns whose inference risk is gated")
    column_kinds: dict[str, Literal["numeric", "integer", "categorical"]] = {}
    link_attacks: int = Field(1000, ge=10)
    link_neighbors: int = Field(5, ge=1)
    small_cell_k: int = Field(5, ge=2, description="fewer than k patients is a small cell, never released")
    near_copy_quantile: float | None = Field(None, ge=0.0, le=0.5, description=(
        "redraw synthetic rows closer to a training row than this quantile of the training rows' own "
        "leave-one-out nearest-neighbour distances (the DCR metric's distance; 0 = off; unset = the "
        "generator's own: 0.13 for diffusion, 0 for the others); README, Near copies"))
    thresholds: Thresholds = Thresholds()
    on_identifiers: Literal["drop", "refuse"] = Field(
        "drop", description="direct identifiers detected in file data: drop them (noted) or refuse")
    on_rare_categories: Literal["pool", "refuse"] = Field(
        "pool", description="categories held by fewer than small_cell_k rows: pool them or refuse")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str | None) -> str | None:
        if v is not None:
            from synth_pipeline.kernel import safe_name

            safe_name(v, "name")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "RunConfig":
        if len(self.conditions) > 1 or (self.conditions and self.target and set(self.conditions) != {self.target}):
            raise ValueError(f"conditions {self.conditions} must name only the target column")
        if (self.sql is None) != (self.connection is None):
            raise ValueError("sql and connection go together (a query and the environment variable with its URL)")
        if self.sql is not None and self.name is None:
            raise ValueError("a sql source needs a name (its release folder)")
        return self

    def overrides(self) -> list[dict[str, Any]]:
        """Looser thresholds, and a small-cell k below its default (smaller cells may then leave)."""
        k = type(self).model_fields["small_cell_k"].default
        return self.thresholds.overrides() + ([{"threshold": "small_cell_k", "value": self.small_cell_k, "default": k,
                                                "note": "smaller cells than the default may be released"}]
                                              if self.small_cell_k < k else [])


def explain(e: ValidationError, cls: type[BaseModel]) -> str:
    """A pydantic error as one line: `field.path: what is wrong (got value)`, errors joined by '; '."""
    parts = []
    for err in e.errors(include_url=False):
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{loc}' (known: {', '.join(_known(cls, err['loc'][:-1]))})")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        got = "" if err["type"] in ("value_error", "missing") else f" (got {err['input']!r})"
        parts.append(f"{loc + ': ' if loc else ''}{msg}{got}")
    return "; ".join(parts)


def _known(cls: type[BaseModel], loc: tuple) -> list[str]:
    """The field names at `loc` (a path of nested models), for the unknown-key message."""
    model = cls
    for part in loc:
        inner = model.model_fields.get(str(part)) if isinstance(model, type) else None
        ann = inner.annotation if inner else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def gate_settings_sha256(cfg: RunConfig) -> str:
    """Digest of everything a gate verdict depends on besides the data: thresholds, attack count,
    seed, declared sensitive columns and k. A check result computed under other settings must not
    release this candidate."""
    body = {"thresholds": cfg.thresholds.model_dump(), "link_attacks": cfg.link_attacks,
            "link_neighbors": cfg.link_neighbors, "seed": cfg.seed,
            "sensitive_columns": list(cfg.sensitive_columns), "small_cell_k": cfg.small_cell_k}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def read_json_config(path: Path | None, cls: type[Settings]) -> Any:
    """Read a JSON config file into `cls`; no file means the defaults."""
    if path is None:
        return cls()
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p}: config file not found")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise BadInput(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from None
    return cls.from_dict(data, where=str(p))


def load_config(path: Path | None) -> RunConfig:
    """Read a JSON run config (keys as in RunConfig); no file means the defaults."""
    return read_json_config(path, RunConfig)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the run config and of a catalogue file, as docs/config.schema.json holds it."""
    from synth_pipeline.catalogue import Catalogue
    from synth_pipeline.imaging.config import MriConfig

    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "synth-pipeline configuration",
            "description": "`run_config`: the --config JSON and the Dagster `settings` resource config; "
                           "`catalogue`: catalogue.yaml; `mri_config`: mri-release --config and `mri_settings`.",
            "$defs": {"run_config": RunConfig.model_json_schema(), "catalogue": Catalogue.model_json_schema(),
                      "mri_config": MriConfig.model_json_schema()}}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m synth_pipeline.config: rewrite docs/config.schema.json
    SCHEMA_PATH.write_text(schema_text())
