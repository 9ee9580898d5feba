"""The one place that assembles Dagster objects (assets, checks, resources, schedule)."""

import dagster as dg

from assets import evaluation, ingest, release, split, training
from assets.gates import GATE_CHECKS
from assets.mri import MRI_ASSETS, MRI_GATE_CHECKS
from assets.operations import (
    INTERMEDIATES_CLEANUP, alerts_from_env, entry_schedules, mri_release_job, new_input_file, nightly_release,
    release_job,
)
from resources import ComputeDevice, MriSettings, ParquetIOManager, PipelineSettings, ReleaseStore
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
        "alerts": alerts_from_env(),
    } | overrides


def definitions(resources: dict) -> dg.Definitions:
    """The code location's definitions with these resources (the CLI runs the same jobs in-process)."""
    return dg.Definitions(
        assets=[ingest.raw_input, *ASSETS, *MRI_ASSETS],
        asset_checks=[*GATE_CHECKS, *MRI_GATE_CHECKS],
        jobs=[release_job, mri_release_job],
        schedules=[nightly_release, *entry_schedules()],
        sensors=[new_input_file, *INTERMEDIATES_CLEANUP],
        resources=resources,
        loggers={"console": dg.colored_console_logger, "progress": progress_logger},
    )


defs = definitions(default_resources())


def cli_release_job() -> dg.JobDefinition:
    """release_job with the default resources: the reconstructable target of the CLI's multiprocess
    runs (each step process rebuilds the job from here; the run config carries the resources' values)."""
    return definitions(default_resources()).resolve_job_def("release_job")


RECONSTRUCTABLE_JOBS = {"release_job": cli_release_job}
