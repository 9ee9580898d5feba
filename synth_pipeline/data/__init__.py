"""Readers and schemas: turn a bundled name or a file path into the raw table plus the Schema the
pipeline models (declared for bundled tables, inferred for files, adjusted by the caller's options)."""

from collections.abc import Mapping, Sequence
import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from synth_pipeline.data.bundled import BUNDLED, BundledDataset
from synth_pipeline.data.infer import INFERRED_NOTE, KINDS, check_kinds, choose_positive, infer_spec, override_kind
from synth_pipeline.data.readers import SUPPORTED, read_table
from synth_pipeline.data.sql import read_sql
from synth_pipeline.errors import BadInput
from synth_pipeline.hashing import file_sha256, frame_sha256
from synth_pipeline.identifiers import detect_identifiers
from synth_pipeline.schema import ColumnSpec, Schema
from synth_pipeline.small_cells import check_target, patient_key, pool_rare_categories
from synth_pipeline.small_cells import notes as pooling_notes

__all__ = ["BUNDLED", "BundledDataset", "KINDS", "LoadedTable", "load_dataset", "read_table", "slugify"]

ON_IDENTIFIERS = ("drop", "refuse")
MAX_ABS_VALUE = 1e15  # beyond this, float64 sums and variances lose the data (or overflow)
MIXED_NUMERIC_SHARE = 0.9  # a text column whose values are mostly numbers is a polluted numeric column


@dataclass(frozen=True)
class LoadedTable:
    """raw: the table as read, every original column; schema: the modelled columns (target included)
    after drop/identifier removal; source: the file read, hashed into the release manifest (None for
    a SQL source: then `sql` and `connection` say what was read, and the rows read are hashed)."""

    raw: pd.DataFrame
    schema: Schema
    source: Path | None
    sql: str | None = None
    connection: str | None = None

    def input_record(self) -> dict[str, str]:
        """What the manifest records of the input, so `reproduce` can tell whether it changed since:
        a file's path and byte hash, or a query's text and the hash of the rows it returned."""
        if self.sql is not None:
            return {"sql": self.sql, "connection": str(self.connection), "sha256": frame_sha256(self.raw),
                    "sha256_of": "rows read (frame_sha256: their Parquet bytes)"}
        return {"path": str(self.source), "sha256": file_sha256(self.source)}


def load_dataset(
    data: str,
    *,
    target: str | None = None,
    drop: Sequence[str] = (),
    id_columns: Sequence[str] = (),
    column_kinds: Mapping[str, str] | None = None,
    on_identifiers: str = "drop",
    name: str | None = None,
    sql: str | None = None,
    connection: str | None = None,
    small_cell_k: int = 5,
    on_rare_categories: str = "pool",
    sensitive: Sequence[str] = (),
) -> LoadedTable:
    """Load a bundled table (case-insensitive name) or a .csv/.parquet/.arff file. Raises BadInput
    with one line naming the file, column or problem for anything the user can fix.

    For a file (not a bundled table, whose schema is declared), columns that look like direct
    identifiers (synth_pipeline.identifiers) are dropped into `identifiers` with the reason in the
    schema notes, or, with on_identifiers="refuse", the load fails naming them. All-missing columns
    are dropped with a note; constant ones are kept with a note. With `sql` (and `connection`, the
    environment variable holding the URL) the rows come from that query and are screened like file
    data. `name` names the dataset (its release folder) instead of the bundled name or file stem.
    Category values held by fewer than `small_cell_k` patients are pooled (synth_pipeline.small_cells;
    noted with counts, never values) or, with on_rare_categories="refuse", the load fails naming the
    columns; a target class that rare fails. `sensitive` (--sensitive-columns) extends the declared
    sensitive columns: each must be a modelled column."""
    if on_identifiers not in ON_IDENTIFIERS:
        raise BadInput(f"config: on_identifiers {on_identifiers!r} must be one of {', '.join(ON_IDENTIFIERS)}")
    bundled = None if sql is not None else BUNDLED.get(str(data).strip().lower())
    if sql is not None:
        source, where = None, f"{name} (sql)"
        raw = read_sql(sql, str(connection), where=where)
    else:
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
    kinds = dict(column_kinds or {})
    check_kinds(kinds, [c for c in raw.columns if c not in set(drop_all) | set(ids_all)], where)
    notes: dict[str, str] = dict(declared.notes) if declared else {"schema": INFERRED_NOTE}
    if not declared:
        drop_all, ids_all = _screen(raw, where, target, drop_all, ids_all, kinds, notes, on_identifiers)
    kept = [c for c in raw.columns if c not in set(drop_all) | set(ids_all)]
    if kinds.get(target, "categorical") != "categorical":
        raise BadInput(f"{where}: target column '{target}' must be categorical, not {kinds[target]}")
    # inferred on the rows the model will see (model_table drops rows without a target)
    modelled = raw if declared else raw[raw[target].notna()]
    specs = tuple(_spec(modelled[c], declared, kinds.get(c), where) for c in kept)
    if not declared:
        _check_values(raw, specs, where, target, kinds, notes, small_cell_k)
    specs = tuple(_target_spec(s, raw[target], where) if s.name == target else s for s in specs)
    _check_classes(raw[target], where)
    keys = patient_key(raw, ids_all)
    check_target(raw[target], where, small_cell_k, keys)
    raw, specs, pooled = pool_rare_categories(
        raw, raw.index[raw[target].notna()], specs, target=target, k=small_cell_k, on_rare=on_rare_categories,
        where=where, declared=declared, keys=keys)
    notes.update(pooling_notes(pooled, small_cell_k))
    positive = declared.positive if declared and target == declared.target else choose_positive(raw[target])
    schema = Schema(
        dataset=name or (declared.dataset if declared else slugify(source.stem)),
        target=target,
        columns=specs,
        drop=drop_all,
        identifiers=ids_all,
        positive=positive,
        sensitive=_union(tuple(c for c in declared.sensitive if c in kept and c != target) if declared else (),
                         _check_sensitive(sensitive, raw, where, target, kept)),
        source=declared.source if declared else (str(source) if source else f"sql via ${connection}"),
        licence=declared.licence if declared else "",
        notes=notes,
    )
    return LoadedTable(raw=raw, schema=schema, source=source, sql=sql, connection=connection)


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


def _check_sensitive(cols: Sequence[str], raw: pd.DataFrame, where: str, target: str, kept: Sequence[str]) -> tuple[str, ...]:
    """The declared sensitive columns other than the target (always attacked); one that is not a
    modelled column (unknown, dropped or an identifier) is bad input, named."""
    for c in cols:
        if c not in raw.columns:
            raise BadInput(f"{where}: sensitive_columns names unknown column '{c}' (available: {_names(raw)})")
        if c not in kept:
            raise BadInput(f"{where}: sensitive column '{c}' is dropped or an identifier, so it is not released")
    return tuple(c for c in cols if c != target)


def _check_columns(raw: pd.DataFrame, where: str, target: str, drop: Sequence[str], ids: Sequence[str]) -> None:
    if target not in raw.columns:
        hint = ""
        if raw.shape[1] == 1:
            hint = "; the file was read as a single column: is its delimiter one of , ; tab | ?"
        raise BadInput(f"{where}: unknown target column '{target}' (available: {_names(raw)}){hint}")
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


def slugify(stem: str) -> str:
    """A file name stem as a safe folder name: "my data (v2)" -> "my_data_v2", accents folded to ASCII; never empty, never
    '..', at most 80 characters (release.safe_name accepts every result)."""
    ascii_stem = unicodedata.normalize("NFKD", str(stem)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_stem)
    slug = re.sub(r"\.{2,}", ".", slug)
    slug = re.sub(r"_{2,}", "_", slug).strip("._-")[:80].rstrip("._-")
    return slug or "data"


def _screen(
    raw: pd.DataFrame, where: str, target: str, drop: tuple[str, ...], ids: tuple[str, ...],
    kinds: Mapping[str, str], notes: dict[str, str], on_identifiers: str,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """File data only: remove all-missing columns (note) and direct identifiers (note, or refuse)."""
    removed = set(drop) | set(ids) | {target}
    empty = [c for c in raw.columns if c not in removed and raw[c].isna().all()]
    for c in empty:
        notes[f"dropped:{c}"] = "dropped: every value is missing (nothing to model)"
    candidates = [c for c in raw.columns if c not in removed and c not in empty]
    findings = detect_identifiers(raw[candidates], target=target)
    if findings and on_identifiers == "refuse":
        listed = ", ".join(f"'{f.column}' ({f.kind})" for f in findings)
        raise BadInput(f"{where}: direct identifier column(s) found: {listed}; remove them, list them in "
                       "id_columns, or set on_identifiers='drop'")
    for f in findings:
        notes[f"identifier:{f.column}"] = f.note()
    return _union(drop, empty), _union(ids, [f.column for f in findings])


def _check_values(
    raw: pd.DataFrame, specs: Sequence[ColumnSpec], where: str, target: str, kinds: Mapping[str, str],
    notes: dict[str, str], small_cell_k: int = 5,
) -> None:
    """File data only: refuse text mixed into a numeric column and values no model can handle
    (infinite, or beyond +-1e15); note constant columns (kept: harmless, and they may be codes)."""
    for spec in specs:
        s = raw[spec.name]
        values = s.dropna()
        if spec.name != target and values.nunique() == 1:
            notes[f"constant:{spec.name}"] = f"constant: every value is {str(values.iloc[0])!r} (kept)"
        if spec.kind == "categorical" and not pd.api.types.is_numeric_dtype(s) and spec.name not in kinds:
            parsed = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
            share = float(parsed.notna().mean()) if len(values) else 0.0
            if MIXED_NUMERIC_SHARE <= share < 1.0 and parsed.nunique() > 10:
                bad = values[parsed.isna()].astype(str).value_counts()
                # an example only when held by k rows (a placeholder such as "n/a"), never a one-patient value
                example = f", e.g. {bad.index[0]!r}" if bad.iloc[0] >= small_cell_k else ""
                raise BadInput(
                    f"{where}: column '{spec.name}' mixes numbers and text ({int(bad.sum())} of {len(values)} values are "
                    f"not numbers{example}); clean it, or declare its kind in column_kinds"
                )
        if spec.kind != "categorical" and spec.name != target:
            numbers = pd.to_numeric(values, errors="coerce").astype("float64")
            if not np.isfinite(numbers.dropna()).all():
                raise BadInput(f"{where}: column '{spec.name}' has infinite values; replace them with a number or leave them empty")
            if len(numbers) and numbers.abs().max() > MAX_ABS_VALUE:
                raise BadInput(
                    f"{where}: column '{spec.name}' has values beyond +-{MAX_ABS_VALUE:g} "
                    f"(max |value| {numbers.abs().max():g}); rescale it"
                )
