"""Reads scoped to the run: what this run itself recorded in its own event log.

Many runs of many datasets share one Dagster instance (the nightly schedule launches one per dataset
at once; CLI, sensor and UI launches add more). The release step must judge the gate results and
report the lineage of *its* candidate, so it reads its own run's ASSET_CHECK_EVALUATION and
ASSET_MATERIALIZATION events, never the latest ones of an asset key. Chosen over a dataset partition
with partitioned checks because the promise is "this candidate in this run": two runs of the *same*
dataset (a sensor run and the nightly run, a retry) would still race inside one partition, and a
team's catalogue entries would each need a partition registered before they could run.
"""

from collections.abc import Sequence

import dagster as dg


def run_events(instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType) -> list[dg.EventLogEntry]:
    """This run's events of one type, oldest first."""
    return [e for e in instance.all_logs(run_id, of_type=event_type) if e.dagster_event is not None]


def materializations(instance: dg.DagsterInstance, run_id: str) -> dict[dg.AssetKey, dg.EventLogEntry]:
    """The last materialization of each asset this run materialized."""
    return {e.dagster_event.asset_key: e for e in run_events(instance, run_id, dg.DagsterEventType.ASSET_MATERIALIZATION)}


def observations(instance: dg.DagsterInstance, run_id: str) -> dict[dg.AssetKey, dg.EventLogEntry]:
    """The last observation of each asset this run observed (the raw input file, with its hash)."""
    return {e.dagster_event.asset_key: e for e in run_events(instance, run_id, dg.DagsterEventType.ASSET_OBSERVATION)}


def lineage(instance: dg.DagsterInstance, run_id: str, assets: Sequence[str], observed: Sequence[str] = ()) -> dict:
    """For the manifest: the run and time of each named asset's materialization (and of each observed
    source's observation) in this run; None for one this run did not produce."""
    mats, obs = materializations(instance, run_id), observations(instance, run_id)
    out = {}
    for names, events, when in ((assets, mats, "materialized_at"), (observed, obs, "observed_at")):
        for name in names:
            ev = events.get(dg.AssetKey(name))
            out[name] = {"run_id": ev.run_id, when: ev.timestamp} if ev else None
    return out


def gate_results(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict]:
    """Every gate check this run evaluated so far, passing or not: check name -> its full result."""
    out = {}
    for e in run_events(instance, run_id, dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = e.dagster_event.event_specific_data
        if isinstance(evaluation, dg.AssetCheckEvaluation) and "result" in evaluation.metadata:
            out[evaluation.check_name] = evaluation.metadata["result"].value
    return out

