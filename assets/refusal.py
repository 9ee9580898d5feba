"""Refusing from inside an asset: record why (append-only refusal record), then fail the step."""

from typing import NoReturn

import dagster as dg

from resources import ReleaseStore
from synth_pipeline.release import record_refusal, utc_now


def refuse(context: dg.AssetExecutionContext, store: ReleaseStore, dataset: str, gate: str, reason: str, **extra) -> NoReturn:
    record_refusal(store.path, dataset, context.run.run_id,
                   {"gate": gate, "passed": False, "reason": reason, "at": utc_now(), **extra})
    raise dg.Failure(description=f"refused: {reason}", metadata={"verdict": "refused", "gate": gate})
