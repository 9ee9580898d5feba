"""Unattended operation: the release job with retries and failure alerts, the nightly schedule, and a
sensor that starts a release when a new input file lands in a watched folder."""

import json
import os
from pathlib import Path

import dagster as dg
import yaml

from resources import AlertWebhook
from synth_pipeline import intermediates
from synth_pipeline.catalogue import check_entry_columns, load_catalogue
from synth_pipeline.config import RunConfig
from synth_pipeline.errors import BadInput

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


EXECUTOR_ENV = "SYNTH_EXECUTOR"  # "k8s" (the Docker image sets it): every step its own pod; unset: Dagster's default


def _executor():
    """The code location's executor: dagster-k8s's k8s_job_executor in the Kubernetes deployment
    (deploy/k8s, validated against these very jobs in tests/test_postgres_k8s.py), else Dagster's
    default. In-process CLI runs (execute_in_process) are unaffected."""
    if os.environ.get(EXECUTOR_ENV) == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return None


def _group_job(name: str, group: str, description: str, retry: dg.RetryPolicy | None = RETRY):
    """One asset group as a job, with the retry policy and the failure alert every release job has."""
    return dg.define_asset_job(name, selection=dg.AssetSelection.groups(group), description=description,
                               op_retry_policy=retry, hooks={alert_on_failure}, executor_def=_executor())


_JOBS = (("release_job", "tabular", "Ingest, validate, split, train, sample, gate and release one dataset."),
         ("mri_release_job", "mri",
          "The brain-MRI arm: slices -> model -> image metrics and gates -> gated image release."))
release_job, mri_release_job = (_group_job(*job) for job in _JOBS)


def in_process_jobs() -> list:
    """The same jobs without the retry policy, for in-process runs (the CLI, the Python API). Dagster
    retries a step stopped by an interrupt (SIGTERM, Ctrl-C) whenever a retry policy applies, and the
    in-process executor, which never polls for interrupts, then runs it again instead of ending the
    run: a SIGTERM could not stop a release. Without the policy the interrupt ends the run (canceled,
    intermediates removed at teardown). Daemon runs keep it: their executor stops on termination."""
    return [_group_job(*job, retry=None) for job in _JOBS]


RUN_CONFIG_ENV = "SYNTH_RUN_CONFIG"  # the Docker image: deploy/k8s/run_config.yaml; unset: nothing added


def deployment_run_config() -> dict:
    """The run config the deployment adds to every run the schedules and the file sensor start: the
    YAML file named by $SYNTH_RUN_CONFIG (the image names deploy/k8s/run_config.yaml, so scheduled
    step pods get their GPU and memory limits as launched ones do), or nothing when it is unset."""
    path = os.environ.get(RUN_CONFIG_ENV, "")
    if not path:
        return {}
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise BadInput(f"${RUN_CONFIG_ENV}={path}: cannot read it as YAML ({type(e).__name__})") from e
    if not isinstance(doc, dict):
        raise BadInput(f"${RUN_CONFIG_ENV}={path}: expected a run config (a YAML mapping)")
    return doc


def _merged(base: dict, over: dict) -> dict:
    """`base` with `over` merged in, key by key through nested mappings; `over` wins."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def lane_config(data: str, settings: dict | None = None, deployment: dict | None = None) -> dict:
    """Run config for one dataset, on top of the `deployment` run config (deployment_run_config).
    Every run writes its intermediates to its own folder (`<work>/<run_id>/`,
    resources/parquet_io.py), so concurrent runs never share files."""
    return _merged(deployment or {}, {"resources": {"settings": {"config": {**(settings or {}), "data": data}}}})


def catalogue_requests(context: dg.ScheduleEvaluationContext, *, cron: str | None):
    """One run request per catalogue entry whose `cron` is `cron`, each with the entry's whole run
    config and the deployment's; a bad catalogue (checked whole, see synth_pipeline/catalogue.py) or
    an unreadable $SYNTH_RUN_CONFIG starts nothing."""
    day = context.scheduled_execution_time.strftime("%Y%m%d")
    try:
        deployment = deployment_run_config()
        entries = [e for e in load_catalogue().datasets if e.cron == cron]
    except BadInput as e:
        return dg.SkipReason(f"nothing started: {e}")
    return [
        dg.RunRequest(
            run_key=f"{e.name}-{day}",
            run_config=lane_config(e.run_config().data, e.run_config().to_dict(), deployment),
            tags={DATASET_TAG: e.name, "synth/date": day},
        )
        for e in entries
    ] or dg.SkipReason("no catalogue entry on this schedule")


@dg.schedule(job=release_job, cron_schedule="0 2 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def nightly_release(context: dg.ScheduleEvaluationContext):
    """One run per catalogue entry without a `cron` of its own (off by default). The catalogue is
    $SYNTH_CATALOGUE, else ./catalogue.yaml, else the shipped one: the bundled tables."""
    return catalogue_requests(context, cron=None)


def entry_schedules() -> list[dg.ScheduleDefinition]:
    """A schedule `release_<name>` for each catalogue entry with its own `cron` (off by default). Built
    when the code location loads; an unreadable catalogue here adds none (nightly_release reports it)."""
    try:
        entries = [e for e in load_catalogue(check_columns=False).datasets if e.cron]
    except BadInput:
        return []

    def make(entry):
        @dg.schedule(name=f"release_{entry.name.replace('.', '_').replace('-', '_')}", job=release_job,
                     cron_schedule=entry.cron, execution_timezone="UTC",
                     default_status=dg.DefaultScheduleStatus.STOPPED)
        def _schedule(context: dg.ScheduleEvaluationContext):
            requests = catalogue_requests(context, cron=entry.cron)
            return requests if isinstance(requests, dg.SkipReason) else [
                r for r in requests if r.tags[DATASET_TAG] == entry.name]

        return _schedule

    return [make(e) for e in entries]


@dg.sensor(job=release_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def new_input_file(context: dg.SensorEvaluationContext):
    """A `<name>.csv` or `<name>.parquet` landing in $SYNTH_WATCH_DIR (default `incoming/`) starts one
    release: with the settings of the catalogue entry `<name>` (its source replaced by the file), or
    else of a `<name>.json` run config next to it (at least {"target": ...}), on top of the deployment's
    run config (deployment_run_config). The run key is the file's
    name, size and mtime, so a replaced file runs again and an unchanged one never does."""
    folder = Path(os.environ.get(WATCH_DIR_ENV, "incoming"))
    if not folder.is_dir():
        return dg.SkipReason(f"{folder}: watched folder does not exist")
    requests = []
    try:
        deployment = deployment_run_config()
        catalogue = {e.name: e for e in load_catalogue().datasets if e.sql is None}
    except BadInput as e:
        return dg.SkipReason(f"nothing started: {e}")
    for data in sorted(p for p in folder.iterdir() if p.suffix in (".csv", ".parquet")):
        sidecar = data.with_suffix(".json")
        if data.stem in catalogue:  # a new file for a catalogue entry: that entry's settings
            entry = catalogue[data.stem].model_copy(update={"path": str(data)})
            try:
                check_entry_columns(entry, where=f"{data}: entry '{entry.name}'")
            except BadInput as e:
                context.log.warning(f"{e}; not started")
                continue
            settings = entry.run_config().to_dict()
        elif sidecar.is_file():
            try:
                settings = RunConfig.from_dict(json.loads(sidecar.read_text()), where=str(sidecar)).to_dict()
            except (BadInput, json.JSONDecodeError) as e:
                context.log.warning(f"{sidecar}: {e}; not started")
                continue
        else:
            context.log.warning(f"{data}: no catalogue entry named {data.stem} and no {sidecar.name} run config "
                                "(needs at least a target); not started")
            continue
        stat = data.stat()
        requests.append(
            dg.RunRequest(
                run_key=f"{data.name}:{stat.st_size}:{stat.st_mtime_ns}",
                run_config=lane_config(str(data.resolve()), settings, deployment),
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
        root = io.get("base_dir") or intermediates.default_root()
        intermediates.remove(intermediates.run_folder(root, context.dagster_run.run_id))

    return _sensor


INTERMEDIATES_CLEANUP = [_remove_intermediates_at_run_end(s) for s in
                         (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)]


def alerts_from_env() -> AlertWebhook:
    return AlertWebhook(url=os.environ.get("SYNTH_ALERT_WEBHOOK", ""))
