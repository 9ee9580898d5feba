"""The catalogue: one YAML file listing the tables a team releases (`datasets:`), one entry each.

An entry is the run config (synth_pipeline.config.RunConfig, the same model and defaults) plus its
source — `path:` (a CSV / Parquet / ARFF file, or a bundled table's name) or `sql:` with
`connection:` (the environment variable holding a SQLAlchemy URL) — and an optional `cron`. The
whole file is checked when it is loaded: a wrong type, a value out of range, an unknown key, a
duplicate name or a column the source does not have is one BadInput line naming the entry and the
field, and nothing runs. A source that cannot be read at load time (file not there yet, database
down) is not a bad entry: its run reports that itself."""

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from synth_pipeline.config import RunConfig
from synth_pipeline.errors import BadInput

CATALOGUE_ENV = "SYNTH_CATALOGUE"
SHIPPED = Path(__file__).resolve().parent.parent / "catalogue.yaml"
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?]+$")


class CatalogueEntry(RunConfig):
    """One table of the catalogue: `name`, one source, the run settings, an optional `cron`."""

    name: str = Field(description="the dataset's name: its release folder, run tag and schedule name")
    path: str | None = Field(None, description="a CSV / Parquet / ARFF file, or a bundled table's name")
    cron: str | None = Field(None, description="its own schedule (5-field cron, UTC); default: the "
                                               "nightly_release schedule at 02:00 UTC")
    data: SkipJsonSchema[str] = Field("flchain", exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _one_source(cls, d: Any) -> Any:
        if isinstance(d, dict):
            if "data" in d:
                raise ValueError("'data' is not a catalogue key: give the source as path: or sql: + connection:")
            if ("path" in d) == ("sql" in d):
                raise ValueError("give exactly one source: path: (a file or bundled table) or sql: (with connection:)")
        return d

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None and (len(v.split()) != 5 or not all(_CRON_FIELD.match(f) for f in v.split())):
            raise ValueError(f"cron {v!r} is not a 5-field cron expression (minute hour day month weekday)")
        return v

    def run_config(self) -> RunConfig:
        """The entry as the run config every run of it uses (its name becomes the dataset name)."""
        body = self.model_dump(mode="json", exclude={"path", "cron"})
        return RunConfig.from_dict({**body, "data": self.path or self.name}, where=f"entry '{self.name}'")


class Catalogue(BaseModel):
    """The whole file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    datasets: tuple[CatalogueEntry, ...] = Field(min_length=1)

    def names(self) -> list[str]:
        return [e.name for e in self.datasets]

    def entry(self, name: str) -> CatalogueEntry:
        for e in self.datasets:
            if e.name == name:
                return e
        raise BadInput(f"catalogue: no dataset named '{name}' (entries: {', '.join(self.names())})")


def catalogue_path(path: str | Path | None = None) -> Path:
    """The catalogue to read: `path`, else $SYNTH_CATALOGUE, else ./catalogue.yaml, else the shipped
    one (the bundled tables)."""
    if path:
        return Path(path)
    if os.environ.get(CATALOGUE_ENV):
        return Path(os.environ[CATALOGUE_ENV])
    here = Path("catalogue.yaml")
    return here if here.is_file() else SHIPPED


def load_catalogue(path: str | Path | None = None, *, check_columns: bool = True) -> Catalogue:
    """Read and check the whole catalogue (see the module docstring); BadInput on the first problem."""
    p = catalogue_path(path)
    if not p.is_file():
        raise BadInput(f"{p}: catalogue file not found")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise BadInput(f"{p}: not valid YAML ({getattr(e, 'problem', e)}"
                       f"{f' at line {mark.line + 1}' if mark else ''})") from None
    if not isinstance(doc, dict) or set(doc) != {"datasets"} or not isinstance(doc["datasets"], list) \
            or not doc["datasets"]:
        raise BadInput(f"{p}: expected a top-level 'datasets:' list of entries and nothing else")
    entries = []
    for i, raw in enumerate(doc["datasets"], 1):
        label = raw.get("name") if isinstance(raw, dict) and isinstance(raw.get("name"), str) else f"#{i}"
        if not isinstance(raw, dict):
            raise BadInput(f"{p}: entry {label}: expected a mapping of keys, got {type(raw).__name__}")
        entry = CatalogueEntry.from_dict(raw, where=f"{p}: entry '{label}'")
        if entry.name in {e.name for e in entries}:
            raise BadInput(f"{p}: entry '{entry.name}': name: used by an earlier entry too")
        if check_columns:
            check_entry_columns(entry, where=f"{p}: entry '{entry.name}'")
        entries.append(entry)
    return Catalogue(datasets=tuple(entries))


def _source_columns(entry: CatalogueEntry, where: str) -> tuple[list[str], str | None] | None:
    """The source's column names and the declared target of a bundled table; None when the source
    cannot be read now."""
    from synth_pipeline.data import BUNDLED
    from synth_pipeline.data.readers import table_columns
    from synth_pipeline.data.sql import sql_columns

    try:
        if entry.sql is not None:
            return sql_columns(entry.sql, str(entry.connection), where=where), None
        bundled = BUNDLED.get(str(entry.path).strip().lower())
        if bundled:
            return table_columns(bundled.path()), bundled.schema.target
        return table_columns(Path(str(entry.path)).expanduser()), None
    except BadInput:
        return None


def check_entry_columns(entry: CatalogueEntry, *, where: str) -> None:
    """Every column the entry names exists in its source, and a file or SQL source names its target."""
    found = _source_columns(entry, where)
    if found is None:
        return
    columns, declared_target = found
    if entry.target is None and declared_target is None:
        raise BadInput(f"{where}: target: required for a file or sql source (columns: {', '.join(columns)})")
    named = [("target", [entry.target] if entry.target else []), ("drop", entry.drop),
             ("id_columns", entry.id_columns), ("sensitive_columns", entry.sensitive_columns),
             ("column_kinds", list(entry.column_kinds)), ("conditions", list(entry.conditions))]
    for field, cols in named:
        for c in cols:
            if c not in columns:
                raise BadInput(f"{where}: {field}: unknown column '{c}' (columns: {', '.join(map(str, columns))})")
