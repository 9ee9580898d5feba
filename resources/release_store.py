"""Where releases and refusals are written (append-only)."""

from pathlib import Path

import dagster as dg


class ReleaseStore(dg.ConfigurableResource):
    root: str = "releases"

    @property
    def path(self) -> Path:
        return Path(self.root)
