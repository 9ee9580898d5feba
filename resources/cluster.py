"""The dask.distributed cluster the heavy steps send their splittable work to (synth_pipeline.cluster)."""

from contextlib import AbstractContextManager

import dagster as dg
from pydantic import Field

from synth_pipeline import cluster


class DaskCluster(dg.ConfigurableResource):
    """Infrastructure, not release content: never recorded in a manifest, and a release computed on
    the cluster equals the local one."""

    scheduler: str = Field("", description="dask.distributed scheduler address, e.g. tcp://dask-scheduler:8786; "
                                           "empty: $SYNTH_DASK_SCHEDULER if set, else everything runs in the step's "
                                           "own process")

    def active(self) -> AbstractContextManager[None]:
        """The block in which DCR search shards, utility model fits and per-column inference attacks
        go to this scheduler."""
        return cluster.using(self.scheduler or None)
