"""Nightly releases: one run per bundled dataset with the default generator (off by default)."""

import dagster as dg

from synth_pipeline.data import BUNDLED

release_job = dg.define_asset_job(
    "release_job",
    selection=dg.AssetSelection.all(),
    description="Ingest, validate, split, train, sample, gate and release one dataset.",
)


def nightly_run_config(dataset: str) -> dict:
    """Each dataset gets its own intermediate lane so the nightly runs never share files."""
    return {
        "resources": {
            "settings": {"config": {"data": dataset}},
            "io_manager": {"config": {"base_dir": f".work/nightly/{dataset}"}},
        }
    }


@dg.schedule(job=release_job, cron_schedule="0 2 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def nightly_release(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.strftime("%Y%m%d")
    for dataset in sorted(BUNDLED):
        yield dg.RunRequest(
            run_key=f"{dataset}-{day}",
            run_config=nightly_run_config(dataset),
            tags={"synth/dataset": dataset, "synth/date": day},
        )
