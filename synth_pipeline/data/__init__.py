"""Readers and schemas: turn a bundled name or a file path into the raw table plus the Schema the
pipeline models (declared for bundled tables, inferred for files, adjusted by the caller's options)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from synth_pipeline.data.bundled import BUNDLED, BundledDataset
from synth_pipeline.data.infer import KINDS, check_kinds, choose_positive, infer_spec, override_kind
from synth_pipeline.data.readers import SUPPORTED, read_table
from synth_pipeline.errors import BadInput
from synth_pipeline.schema import ColumnSpec, Schema

__all__ = ["BUNDLED", "BundledDataset", "KINDS", "LoadedTable", "load_dataset", "read_table"]


@dataclass(frozen=True)
class LoadedTable:
    """raw: the table as read, every original column; schema: the modelled columns (target included)
    after drop/identifier removal; source: the file read, hashed into the release manifest."""

    raw: pd.DataFrame
    schema: Schema
    source: Path


def load_dataset(
    data: str,
    *,
    target: str | None = None,
    drop: Sequence[str] = (),
    id_columns: Sequence[str] = (),
    column_kinds: Mapping[str, str] | None = None,
) -> LoadedTable:
    """Load a bundled table (case-insensitive name) or a .csv/.parquet/.arff file. Raises BadInput
    with one line naming the file, column or problem for anything the user can fix."""
    bundled = BUNDLED.get(str(data).strip().lower())
    source = bundled.path() if bundled else _resolve_path(str(data))
    raw = read_table(source)
    where = bundled.schema.dataset if bundled else str(source)
    declared = bundled.schema if bundled else None
    target = target or (declared.target if declared else None)
    if target is None:
        raise BadInput(f"{where}: a target column is required for file data (available: {_names(raw)})")
    drop_all = _union(declared.drop if declared else (), drop)
    ids_all = _union(declared.identifiers if declared else (), id_columns)
    _check_columns(raw, where, target, drop_all, ids_all)
    kept = [c for c in raw.columns if c not in set(drop_all) | set(ids_all)]
    kinds = dict(column_kinds or {})
    check_kinds(kinds, kept, where)
    if kinds.get(target, "categorical") != "categorical":
        raise BadInput(f"{where}: target column '{target}' must be categorical, not {kinds[target]}")
    specs = tuple(_spec(raw[c], declared, kinds.get(c), where) for c in kept)
    specs = tuple(_target_spec(s, raw[target], where) if s.name == target else s for s in specs)
    _check_classes(raw[target], where)
    positive = declared.positive if declared and target == declared.target else choose_positive(raw[target])
    schema = Schema(
        dataset=declared.dataset if declared else source.stem,
        target=target,
        columns=specs,
        drop=drop_all,
        identifiers=ids_all,
        positive=positive,
        sensitive=tuple(c for c in declared.sensitive if c in kept and c != target) if declared else (),
        source=declared.source if declared else str(source),
        licence=declared.licence if declared else "",
        notes=dict(declared.notes) if declared else {"schema": "inferred from the file"},
    )
    return LoadedTable(raw=raw, schema=schema, source=source)


def _resolve_path(data: str) -> Path:
    """A string that names no existing file and looks like no path is most likely a mistyped bundled name."""
    path = Path(data).expanduser()
    if not path.exists() and path.suffix.lower() not in SUPPORTED and len(path.parts) == 1:
        raise BadInput(
            f"{data}: unknown dataset (bundled: {', '.join(sorted(BUNDLED))}; "
            f"or a path to a {'/'.join(SUPPORTED)} file)"
        )
    return path


def _names(raw: pd.DataFrame) -> str:
    return ", ".join(map(str, raw.columns))


def _union(declared: Sequence[str], extra: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*declared, *extra]))


def _check_columns(raw: pd.DataFrame, where: str, target: str, drop: Sequence[str], ids: Sequence[str]) -> None:
    if target not in raw.columns:
        raise BadInput(f"{where}: unknown target column '{target}' (available: {_names(raw)})")
    for option, cols in (("drop", drop), ("id_columns", ids)):
        for c in cols:
            if c not in raw.columns:
                raise BadInput(f"{where}: {option} names unknown column '{c}' (available: {_names(raw)})")
        if target in cols:
            raise BadInput(f"{where}: target column '{target}' is listed in {option}")


def _spec(s: pd.Series, declared: Schema | None, kind: str | None, where: str) -> ColumnSpec:
    """Declared spec when the bundled schema has one, else inferred; then the caller's kind override."""
    base = declared.column(s.name) if declared and s.name in declared.names else infer_spec(s)
    return override_kind(base, s, kind, where) if kind else base


def _target_spec(spec: ColumnSpec, s: pd.Series, where: str) -> ColumnSpec:
    """The target is a class label: categorical, never missing in the modelled table."""
    return replace(override_kind(spec, s, "categorical", where), max_missing=0.0)


def _check_classes(s: pd.Series, where: str) -> None:
    classes = s.dropna().astype(str).unique()
    if len(classes) < 2:
        raise BadInput(f"{where}: target column '{s.name}' has {len(classes)} class(es) after removing missing values; need at least 2")
