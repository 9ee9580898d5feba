"""The one refusal route for every step of both arms: record why (append-only refusal record), then
fail the step with a Failure the job's retry policy never retries (a refusal is final). A gate check
records through `record` and fails by returning a failed blocking result, which Dagster does not retry
either."""

import functools
from typing import NoReturn

import dagster as dg

from assets.run_log import gate_results
from resources import ReleaseStore
from synth_pipeline.errors import BadInput
from synth_pipeline.kernel import code_version, package_versions, record_refusal, utc_now
from synth_pipeline.remedies import remedy


Context = dg.AssetExecutionContext | dg.AssetCheckExecutionContext


def record(context: Context, store: ReleaseStore, dataset: str, gate: str, reason: str, *, config: dict,
           result: dict | None = None, **extra) -> None:
    """Append this run's refusal entry for `gate` to `<store>/<dataset>/refusals/<run_id>.json` with
    the measured remedy to try next, every gate result of the run so far and the run's config and seed."""
    run_id = context.run.run_id
    metrics = (result or {}).get("metrics") or [{}]
    generator = config.get("generator") or config.get("model") or ""
    advice = remedy(gate, reason=reason, generator=generator, detail=metrics[0].get("detail"))
    gates = gate_results(context.instance, run_id) | ({gate: result} if result else {})
    record_refusal(store.path, dataset, run_id,
                   {"gate": gate, "passed": False, "reason": reason, "remedy": advice, "at": utc_now(),
                    **({"metrics": result["metrics"]} if result else {}), **extra},
                   gates=gates, run={"config": config, "seed": config.get("seed"), "generator": generator,
                                     "code_version": code_version(), "packages": package_versions()})


def note_passed(context: Context, store: ReleaseStore, dataset: str, gate: str, result: dict) -> None:
    """A gate that passed after another gate of the same run refused joins that run's refusal record."""
    record_refusal(store.path, dataset, context.run.run_id, None, gates={gate: result})


def refuse(context: dg.AssetExecutionContext, store: ReleaseStore, dataset: str, gate: str, reason: str, *,
           config: dict, **extra) -> NoReturn:
    record(context, store, dataset, gate, reason, config=config, **extra)
    raise dg.Failure(description=f"refused: {reason}", metadata={"verdict": "refused", "gate": gate}, allow_retries=False)


def final_on_bad_input(fn):
    """Bad input is not transient: turn BadInput into a Failure the retry policy does not retry
    (the BadInput stays as its cause, which the CLI reads for exit code 2)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BadInput as e:
            raise dg.Failure(description=str(e), allow_retries=False) from e

    return wrapper
