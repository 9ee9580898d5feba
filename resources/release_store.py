"""Where releases and refusals are written (append-only).

A release is published by renaming its complete, fsynced folder into place (synth_pipeline/kernel.py),
so readers see all of it or none. Object stores have no atomic rename, so the root is a POSIX path:
in Kubernetes a ReadWriteMany PVC (NFS, CephFS, EFS: rename is atomic there) mounted at the same
path in every pod. A URL is refused rather than published without that guarantee."""

from pathlib import Path

import dagster as dg

from synth_pipeline.errors import BadInput


class ReleaseStore(dg.ConfigurableResource):
    root: str = "releases"

    @property
    def path(self) -> Path:
        if "://" in self.root:
            raise BadInput(f"release_store root {self.root}: releases are published by an atomic folder rename, "
                           "which object stores lack; give a POSIX path (in Kubernetes a ReadWriteMany PVC)")
        return Path(self.root)
