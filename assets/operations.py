"""Unattended operation: the release job with retries and failure alerts, the nightly schedule, and a
sensor that starts a release when a new input file lands in a watched folder."""

import json
import os
from pathlib import Path

import dagster as dg

from resources import AlertWebhook
from synth_pipeline import intermediates
from synth_pipeline.data import BUNDLED

# Transient failures (a busy GPU, a flaky network file system) get two more tries; bad input and
# gate refusals raise Failure(allow_retries=False) and are not retried.
RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)
WATCH_DIR_ENV = "SYNTH_WATCH_DIR"
DATASET_TAG = "dataset"  # every run (CLI, schedule, sensor) names its dataset: the UI's run list filters on it


@dg.failure_hook(required_resource_keys={"alerts"})
def alert_on_failure(context: dg.HookContext) -> None:
    """One alert per failed step, with the run, the step and the error's first line."""
    error = context.op_exception
    context.resources.alerts.send(
        {
            "text": f"synth-pipeline: step {context.step_key} failed in run {context.run_id}",
            "run_id": context.run_id,
            "job": context.job_name,
            "step": context.step_key,
            "error": str(error).splitlines()[0] if error else None,
            "error_type": type(error).__name__ if error else None,
        },
        log=context.log,
    )


def _group_job(name: str, group: str, description: str):
    """One asset group as a job, with the retry policy and the failure alert every release job has."""
    return dg.define_asset_job(name, selection=dg.AssetSelection.groups(group), description=description,
                               op_retry_policy=RETRY, hooks={alert_on_failure})


release_job = _group_job("release_job", "tabular", "Ingest, validate, split, train, sample, gate and release one dataset.")
mri_release_job = _group_job("mri_release_job", "mri",
                             "The brain-MRI arm: slices -> model -> image metrics and gates -> gated image release.")


def lane_config(data: str, settings: dict | None = None) -> dict:
    """Run config for one dataset. Every run writes its intermediates to its own folder
    (`<work>/<run_id>/`, resources/parquet_io.py), so concurrent runs never share files."""
    return {"resources": {"settings": {"config": {**(settings or {}), "data": data}}}}


@dg.schedule(job=release_job, cron_schedule="0 2 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def nightly_release(context: dg.ScheduleEvaluationContext):
    """One run per bundled dataset with the default generator (off by default)."""
    day = context.scheduled_execution_time.strftime("%Y%m%d")
    for dataset in sorted(BUNDLED):
        yield dg.RunRequest(
            run_key=f"{dataset}-{day}",
            run_config=lane_config(dataset),
            tags={DATASET_TAG: dataset, "synth/date": day},
        )


@dg.sensor(job=release_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def new_input_file(context: dg.SensorEvaluationContext):
    """A `<name>.csv` or `<name>.parquet` landing in $SYNTH_WATCH_DIR (default `incoming/`) next to a
    `<name>.json` run config (at least {"target": ...}) starts one release. The run key is the file's
    name, size and mtime, so a replaced file runs again and an unchanged one never does."""
    folder = Path(os.environ.get(WATCH_DIR_ENV, "incoming"))
    if not folder.is_dir():
        return dg.SkipReason(f"{folder}: watched folder does not exist")
    requests = []
    for data in sorted(p for p in folder.iterdir() if p.suffix in (".csv", ".parquet")):
        sidecar = data.with_suffix(".json")
        if not sidecar.is_file():
            context.log.warning(f"{data}: no {sidecar.name} run config (needs at least a target); not started")
            continue
        stat = data.stat()
        requests.append(
            dg.RunRequest(
                run_key=f"{data.name}:{stat.st_size}:{stat.st_mtime_ns}",
                run_config=lane_config(str(data.resolve()), json.loads(sidecar.read_text())),
                tags={DATASET_TAG: data.stem, "synth/source": str(data)},
            )
        )
    return requests or dg.SkipReason(f"{folder}: no input file with a run config")


def _remove_intermediates_at_run_end(status: dg.DagsterRunStatus) -> dg.SensorDefinition:
    """A run's intermediates folder removed once the run has ended with `status` (the daemon evaluates
    it; in-process runs also remove their folder themselves at teardown)."""

    @dg.run_status_sensor(run_status=status, name=f"remove_intermediates_on_{status.value.lower()}",
                          default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=15)
    def _sensor(context: dg.RunStatusSensorContext):
        io = (context.dagster_run.run_config.get("resources", {}).get("io_manager", {}).get("config", {}))
        root = Path(io.get("base_dir") or intermediates.default_root())
        intermediates.remove(root / context.dagster_run.run_id)

    return _sensor


INTERMEDIATES_CLEANUP = [_remove_intermediates_at_run_end(s) for s in
                         (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)]


def alerts_from_env() -> AlertWebhook:
    return AlertWebhook(url=os.environ.get("SYNTH_ALERT_WEBHOOK", ""))
