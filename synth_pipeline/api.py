"""The Python API for notebooks: `synth_pipeline.kernel` and `synth_pipeline.evaluate` on DataFrames.

`release` runs the very same Dagster asset graph and gate checks as `synth-pipeline release` (the
CLI's `run_release`, in-process); `evaluate` computes the same gates and reports as
`synth-pipeline evaluate`. A DataFrame reaches the graph as a Parquet file in a private temporary
folder (mode 0700) that is deleted when the call returns, so no real row lingers on disk.

Heavy libraries (pandas, Dagster, torch) are imported inside the functions: `import synth_pipeline`
stays cheap.
"""

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synth_pipeline.errors import BadInput

if TYPE_CHECKING:
    import pandas as pd

    from synth_pipeline.gates import GateResult
    from synth_pipeline.metrics.base import MetricResult

__all__ = ["EvaluationResult", "ReleaseResult", "evaluate", "release"]


@dataclass(frozen=True)
class ReleaseResult:
    """What `release` did. `verdict` is "published" or "refused"; `gates` holds each gate's result
    for this run (on a refusal also the release step's or generator's own refusal, when there is
    one); `release_dir` is the published folder, `refusal_record` the `refusals/<run_id>.json`
    (both absolute)."""

    verdict: str
    message: str
    run_id: str
    gates: "tuple[GateResult, ...]"
    release_dir: Path | None = None
    refusal_record: Path | None = None

    @property
    def published(self) -> bool:
        return self.verdict == "published"

    @property
    def manifest_path(self) -> Path | None:
        return self.release_dir / "manifest.json" if self.release_dir else None


@dataclass(frozen=True)
class EvaluationResult:
    """What `evaluate` computed: `verdict` "pass" (every gate holds) or "refuse", each gate's result,
    and the fidelity / utility / privacy report metrics by report name."""

    verdict: str
    gates: "tuple[GateResult, ...]"
    reports: "Mapping[str, tuple[MetricResult, ...]]"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def metric(self, name: str) -> "MetricResult":
        """The report metric called `name` (e.g. "dcr_share", "tstr_ratio"); KeyError if absent."""
        for metrics in self.reports.values():
            for m in metrics:
                if m.name == name:
                    return m
        raise KeyError(name)


def _frame(value: Any, what: str) -> "pd.DataFrame":
    """`value` if it is a usable DataFrame, else BadInput naming `what`."""
    import pandas as pd

    if not isinstance(value, pd.DataFrame):
        raise BadInput(f"{what}: expected a pandas DataFrame, got {type(value).__name__}")
    if value.shape[0] == 0 or value.shape[1] == 0:
        raise BadInput(f"{what}: the DataFrame is empty ({value.shape[0]} rows, {value.shape[1]} columns)")
    bad = [c for c in value.columns if not isinstance(c, str)]
    if bad:
        raise BadInput(f"{what}: column names must be strings, got {bad[:5]!r}")
    dupes = sorted({c for c in value.columns if list(value.columns).count(c) > 1})
    if dupes:
        raise BadInput(f"{what}: duplicate column name(s) {dupes}")
    return value


def _target(target: Any, df: "pd.DataFrame", what: str) -> str:
    if not isinstance(target, str) or target not in df.columns:
        raise BadInput(f"{what}: unknown target column {target!r} (available: {', '.join(map(str, df.columns))})")
    return target


def _write_parquet(df: "pd.DataFrame", path: Path, what: str) -> None:
    import pyarrow

    try:
        df.to_parquet(path, index=False, engine="pyarrow")
    except (pyarrow.ArrowException, ValueError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadInput(f"{what}: cannot be stored as a table ({first})") from None


def _generator(name: Any) -> None:
    """Refuse an unknown generator before any work, with the closest names."""
    import difflib

    from synth_pipeline.generators.base import available

    names = sorted(available())
    if name not in names:
        close = difflib.get_close_matches(str(name), names, n=2)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise BadInput(f"generator {name!r} is unknown; {hint}choose one of: {', '.join(names)}")


def _config(options: Mapping[str, Any], **fixed: Any):
    """A RunConfig from keyword options (any RunConfig key) plus what the call fixes itself."""
    from synth_pipeline.config import RunConfig

    clash = sorted(set(options) & (set(fixed) | {"data"}))
    if clash:
        raise BadInput(f"option(s) {clash} are set by the call's own arguments; pass them there")
    try:
        return RunConfig.from_dict({**options, **fixed})
    except TypeError as e:
        raise BadInput(f"options: {e}") from None


def release(
    df: "pd.DataFrame",
    *,
    target: str,
    generator: str | None = None,
    out: str | Path = "releases",
    name: str = "dataframe",
    verbose: bool = False,
    instance: Any = None,
    **options: Any,
) -> ReleaseResult:
    """Release `df` through the gated pipeline, exactly as `synth-pipeline release --data FILE`.

    `name` is the dataset name (the folder under `out`, and what "since the previous release"
    compares against). `generator` defaults to RunConfig's (`auto`). `options` are RunConfig keys:
    seed, drop, id_columns, n_rows, generator_params, thresholds, conditions, holdout_fraction,
    link_attacks, column_kinds, on_identifiers. `instance` is a Dagster instance (default:
    $DAGSTER_HOME's, else ephemeral). Returns a ReleaseResult for a publication or a refusal; raises
    BadInput (one line) for input the caller must fix and RuntimeError for an unexpected pipeline
    failure."""
    from synth_pipeline.kernel import safe_name

    df = _frame(df, "df")
    _target(target, df, "df")
    safe_name(name, "name")
    if generator is not None:
        _generator(generator)
    out = Path(out).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise BadInput(f"out {out}: exists and is not a folder")
    with tempfile.TemporaryDirectory(prefix="synth-api-") as tmp:
        path = Path(tmp) / f"{name}.parquet"
        _write_parquet(df, path, "df")
        chosen = {} if generator is None else {"generator": generator}
        cfg = _config(options, data=str(path), target=target, **chosen)
        return _run(cfg, out, path, verbose=verbose, instance=instance)


def _run(cfg, out: Path, path: Path, *, verbose: bool, instance: Any) -> ReleaseResult:
    import json

    from synth_pipeline.cli import _instance, run_release

    instance = instance or _instance()
    outcome = run_release(cfg, out, verbose=verbose, instance=instance)
    message = outcome.message.replace(str(path), "df")
    if outcome.status == "bad_input":
        raise BadInput(message)
    if outcome.status == "error":
        raise RuntimeError(message)
    run_id = str(outcome.run_id)
    if outcome.status == "published":
        rel = Path(str(outcome.path))
        manifest = json.loads((rel / "manifest.json").read_text())
        gates = tuple(_gate(g) for g in manifest.get("gates", []))
        return ReleaseResult("published", message, run_id, gates, release_dir=rel)
    record = Path(outcome.path) if outcome.path else None
    return ReleaseResult("refused", message, run_id, _refused_gates(instance, run_id, record), refusal_record=record)


def _gate(d: Mapping[str, Any]) -> "GateResult":
    from synth_pipeline.gates import GateResult

    return GateResult.from_dict(d)


def _refused_gates(instance, run_id: str, record: Path | None) -> "tuple[GateResult, ...]":
    """Each gate as this run's check evaluated it (passing ones too), then the refusal record's
    entries no check wrote (the release step's or the generator's own refusal)."""
    import json

    from assets.gates import read_gate
    from synth_pipeline.kernel import GATES

    found = {}
    for g in GATES:
        rec, result = read_gate(instance, g, run_id)
        if rec is not None and result:
            found[g] = _gate(result)
    entries = json.loads(record.read_text()).get("entries", []) if record and record.is_file() else []
    for e in entries:
        found.setdefault(e.get("gate", "?"), _gate(e))
    return tuple(found.values())


def evaluate(
    *,
    train: "pd.DataFrame",
    holdout: "pd.DataFrame",
    synthetic: "pd.DataFrame",
    target: str,
    **options: Any,
) -> EvaluationResult:
    """Score an existing synthetic table with the release gates and reports, exactly as
    `synth-pipeline evaluate`. Tables are keyword-only (a swapped pair must be an error, not a wrong
    number). The schema is inferred from `train` as for a file; `options` are RunConfig keys (seed,
    thresholds, link_attacks, drop, id_columns, column_kinds, ...). Raises BadInput (one line)."""
    from synth_pipeline.data import load_dataset
    from synth_pipeline.evaluation import evaluate_tables
    from synth_pipeline.schema import conform

    frames = {"train": _frame(train, "train"), "holdout": _frame(holdout, "holdout"),
              "synthetic": _frame(synthetic, "synthetic")}
    _target(target, frames["train"], "train")
    with tempfile.TemporaryDirectory(prefix="synth-api-") as tmp:
        path = Path(tmp) / "train.parquet"
        _write_parquet(frames["train"], path, "train")
        cfg = _config(options, data=str(path), target=target)
        try:
            schema = load_dataset(str(path), target=target, drop=cfg.drop, id_columns=cfg.id_columns,
                                  column_kinds=cfg.column_kinds, on_identifiers=cfg.on_identifiers).schema
        except BadInput as e:
            raise BadInput(str(e).replace(str(path), "train")) from None
    tables = {}
    for what, frame in frames.items():
        try:
            tables[what] = conform(frame, schema)
        except KeyError as e:
            raise BadInput(f"{what}: does not have the train columns ({e.args[0]})") from None
    gates, reports = evaluate_tables(**tables, schema=schema, cfg=cfg)
    return EvaluationResult("pass" if all(g.passed for g in gates) else "refuse", gates, reports)
