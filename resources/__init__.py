"""Dagster resources: run settings, the Parquet IO manager, the release store, the compute device, the Dask cluster."""

from resources.alerts import AlertWebhook
from resources.cluster import DaskCluster
from resources.device import ComputeDevice
from resources.parquet_io import ParquetIOManager
from resources.release_store import ReleaseStore
from resources.settings import MriSettings, PipelineSettings

__all__ = ["AlertWebhook", "ComputeDevice", "DaskCluster", "MriSettings", "ParquetIOManager", "PipelineSettings", "ReleaseStore"]
