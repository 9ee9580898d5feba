"""Compute device resource: 'auto' picks CUDA when present."""

import dagster as dg

from synth_pipeline.device import pick_device


class ComputeDevice(dg.ConfigurableResource):
    device: str = "auto"

    def resolve(self) -> str:
        return pick_device(self.device)
