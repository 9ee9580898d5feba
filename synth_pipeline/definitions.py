"""The one place that assembles Dagster objects (assets, checks, resources, schedule)."""

import dagster as dg

from assets import evaluation, ingest, release, split, training
from assets.gates import GATE_CHECKS
from assets.mri import MRI_ASSETS, MRI_GATE_CHECKS
from assets.operations import (
    INTERMEDIATES_CLEANUP, alerts_from_env, entry_schedules, in_process_jobs, mri_release_job, new_input_file,
    nightly_release, release_job,
)
from resources import ComputeDevice, DaskCluster, MriSettings, ParquetIOManager, PipelineSettings, ReleaseStore
from resources.progress import progress_logger
from synth_pipeline import intermediates

ASSETS = [
    ingest.raw_table,
    ingest.validated_table,
    split.train_holdout_split,
    training.fitted_generator,
    training.synthetic_candidate,
    evaluation.fidelity_report,
    evaluation.utility_report,
    evaluation.privacy_report,
    release.release,
]


def default_resources(**overrides) -> dict:
    return {
        "settings": PipelineSettings(),
        "mri_settings": MriSettings(),
        "io_manager": ParquetIOManager(base_dir=str(intermediates.default_root())),
        "release_store": ReleaseStore(),
        "device": ComputeDevice(),
        "cluster": DaskCluster(),
        "alerts": alerts_from_env(),
    } | overrides


def definitions(resources: dict, *, in_process: bool = False) -> dg.Definitions:
    """The code location's definitions with these resources. The CLI runs the same jobs in-process
    (`in_process`): without the retry policy, so that an interrupt ends the run (in_process_jobs), and
    without the schedules and the file sensor, which start the daemon's jobs."""
    return dg.Definitions(
        assets=[ingest.raw_input, *ASSETS, *MRI_ASSETS],
        asset_checks=[*GATE_CHECKS, *MRI_GATE_CHECKS],
        jobs=in_process_jobs() if in_process else [release_job, mri_release_job],
        schedules=[] if in_process else [nightly_release, *entry_schedules()],  # they target the daemon's jobs
        sensors=[*([] if in_process else [new_input_file]), *INTERMEDIATES_CLEANUP],
        resources=resources,
        loggers={"console": dg.colored_console_logger, "progress": progress_logger},
    )


defs = definitions(default_resources())


def cli_release_job() -> dg.JobDefinition:
    """release_job as the CLI runs it (`in_process` definitions: no retry policy, no schedules), with the
    default resources: the reconstructable target of the CLI's multiprocess runs (each step process
    rebuilds the job from here; the run config carries the resources' values)."""
    return definitions(default_resources(), in_process=True).resolve_job_def("release_job")


RECONSTRUCTABLE_JOBS = {"release_job": cli_release_job}
