"""The one refusal route for every step of both arms: record why (append-only refusal record), then
fail the step with a Failure the job's retry policy never retries (a refusal is final). A gate check
records through `record` and fails by returning a failed blocking result, which Dagster does not retry
either."""

import functools
from typing import NoReturn

import dagster as dg

from resources import ReleaseStore
from synth_pipeline.errors import BadInput
from synth_pipeline.release import record_refusal, utc_now


def record(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, store: ReleaseStore, dataset: str,
           gate: str, reason: str, **extra) -> None:
    """Append this run's refusal entry for `gate` to `<store>/<dataset>/refusals/<run_id>.json`."""
    record_refusal(store.path, dataset, context.run.run_id,
                   {"gate": gate, "passed": False, "reason": reason, "at": utc_now(), **extra})


def refuse(context: dg.AssetExecutionContext, store: ReleaseStore, dataset: str, gate: str, reason: str, **extra) -> NoReturn:
    record(context, store, dataset, gate, reason, **extra)
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
