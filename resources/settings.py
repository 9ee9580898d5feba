"""Run settings as Dagster resources: the UI/launchpad face of synth_pipeline.config.RunConfig and
synth_pipeline.imaging.config.MriConfig.

The resource's fields are *derived* from the core pydantic model (same names, nesting, defaults and
descriptions), so the Dagster run config under `resources.settings.config` has exactly the shape of a
`--config` JSON file or a catalogue entry, and defaults are written once, in the core. The core model
cannot itself be a `dg.Config` (synth_pipeline/ never imports dagster), and Dagster's config types
know no tuples: tuples become lists, nested models nested `dg.Config`s. Types are checked by Dagster
when a run is launched; ranges, strictness and cross-field rules by the core model when a step asks
for `run_config()` (a violation is a BadInput, final, never retried)."""

import types
import typing
from typing import Any

import dagster as dg
from pydantic import BaseModel, Field, create_model

from synth_pipeline.config import RunConfig
from synth_pipeline.errors import BadInput
from synth_pipeline.imaging.config import MriConfig

CATALOGUE_ENTRY = "catalogue_entry"


def _dagster_type(annotation: Any, *, top: bool = True) -> Any:
    """The core field's type as a Dagster config type: tuple[X, ...] -> list[X], a nested model ->
    its derived dg.Config, unions and containers element by element; a Literal is a Dagster enum at
    the top level and its value type inside a container (Dagster knows no nested enum)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _derive(annotation, dg.Config)
    if origin is typing.Literal and not top:
        return type(args[0])
    if origin is tuple:
        return list[_dagster_type(args[0], top=False)]
    if origin in (types.UnionType, typing.Union):
        return typing.Union[tuple(_dagster_type(a, top=top) for a in args)]  # noqa: UP007
    if origin is dict:
        return dict[args[0], _dagster_type(args[1], top=False)]
    return annotation


def _dagster_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _derive(type(value), dg.Config)(**value.model_dump())
    return list(value) if isinstance(value, tuple) else value


_DERIVED: dict[type, type] = {}


def _derive(model: type[BaseModel], base: type, name: str | None = None, **extra: Any) -> type:
    """A `base` subclass whose fields mirror `model`'s (plus `extra`), for Dagster's config system."""
    if name is None and model in _DERIVED:
        return _DERIVED[model]
    fields = {n: (_dagster_type(f.annotation), Field(_dagster_default(f.default), description=f.description))
              for n, f in model.model_fields.items()}
    cls = create_model(name or f"{model.__name__}Settings", __base__=base, __module__=__name__,
                       __doc__=model.__doc__, **fields, **extra)
    if name is None:
        _DERIVED[model] = cls
    return cls


def _as_core(settings: BaseModel, core: type, where: str) -> Any:
    """The resource's values validated by the core model (lists become tuples there)."""
    values = settings.model_dump()
    values.pop(CATALOGUE_ENTRY, None)
    return core.from_dict(values, where=where)


class _PipelineSettings(dg.ConfigurableResource):
    def run_config(self) -> RunConfig:
        """The validated core config. With `catalogue_entry` set, that entry of the catalogue
        ($SYNTH_CATALOGUE, default catalogue.yaml) is the config, and no other field may be set."""
        cfg = _as_core(self, RunConfig, "settings")
        name = getattr(self, CATALOGUE_ENTRY)
        if not name:
            return cfg
        from synth_pipeline.catalogue import load_catalogue

        default = RunConfig().to_dict()
        changed = sorted(k for k, v in cfg.to_dict().items() if v != default[k])
        if changed:
            raise BadInput(f"settings: catalogue_entry '{name}' is set together with {', '.join(changed)}; "
                           "set one or the other")
        return load_catalogue(None, check_columns=False).entry(name).run_config()

    @classmethod
    def from_run_config(cls, cfg: RunConfig) -> "_PipelineSettings":
        return cls(**cfg.to_dict())


class _MriSettings(dg.ConfigurableResource):
    def mri_config(self) -> MriConfig:
        return _as_core(self, MriConfig, "mri_settings")

    @classmethod
    def from_mri_config(cls, cfg: MriConfig) -> "_MriSettings":
        return cls(**cfg.to_dict())


PipelineSettings = _derive(
    RunConfig, _PipelineSettings, "PipelineSettings",
    catalogue_entry=(str | None, Field(None, description="run this catalogue entry (catalogue.yaml or "
                                                         "$SYNTH_CATALOGUE) instead of the fields below")),
)
PipelineSettings.__doc__ = "What to release and how: the fields of synth_pipeline.config.RunConfig, or a catalogue entry."
MriSettings = _derive(MriConfig, _MriSettings, "MriSettings")
MriSettings.__doc__ = "What the MRI arm releases and how: the fields of synth_pipeline.imaging.config.MriConfig."
