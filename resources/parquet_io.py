"""IO manager: DataFrames as Parquet and MRI slice sets as .npz (never pickles), reports and references as JSON.

A table's `attrs` (its Schema, the input file's hash) travel with it in the Parquet key-value
metadata, so every downstream asset knows the column types and provenance without re-reading the
source. A returned directory (a fitted generator's files) is moved into the store and loaded back as
its Path. No reader ever sees a half-written file (synth_pipeline.intermediates.write_whole).

`base_dir` is a local folder or any fsspec URL (universal_pathlib): in Kubernetes every step is
its own pod, so the steps of one run share intermediates through a ReadWriteMany PVC mounted at the
same path in every pod, or an object store (`s3://bucket/work`). On an object store a returned
directory is uploaded, and loaded back as a local copy under the system temp folder that the
step removes when it ends.

Intermediates hold real rows, so every run gets its own folder `<base_dir>/<run_id>/`
(synth_pipeline.intermediates), removed when the run ends unless `keep_intermediates` is set: here at
teardown when one process ran the whole run (in-process executor, the CLI), by the run-end sensors
(assets/operations.py) after a multiprocess run, and by the next run's sweep after a killed one. A
run therefore never reads another run's tables.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import PrivateAttr
from upath import UPath

from synth_pipeline import intermediates
from synth_pipeline.imaging.slices import SliceSet

ATTRS_KEY = b"synth_pipeline.attrs"


class ParquetIOManager(dg.ConfigurableIOManager):
    """`base_dir` (a path or an fsspec URL) holds one folder per run; `keep_intermediates` keeps a
    run's folder after it ends."""

    base_dir: str = ".work"
    keep_intermediates: bool = False
    _copies: list[str] = PrivateAttr(default_factory=list)  # local copies of uploaded directories

    def _root(self) -> UPath:
        return UPath(self.base_dir)

    def _stem(self, context: dg.OutputContext | dg.InputContext) -> UPath:
        return intermediates.run_folder(self._root(), context.step_context.run_id).joinpath(*context.asset_key.path)

    def _claim(self, context: dg.OutputContext) -> None:
        """This run's folder (owner record first); the first claim also sweeps folders of runs that are over."""
        run_id = context.step_context.run_id
        if intermediates.read_owner(intermediates.run_folder(self._root(), run_id)) is None:
            instance = context.step_context.instance
            intermediates.sweep(self._root(), lambda rid: _finished(instance, rid), spare=run_id)
        intermediates.claim(self._root(), run_id, keep=self.keep_intermediates)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Local copies go; when the process that ran the whole run tears down, the run is over:
        its folder goes too."""
        for copy in self._copies:
            shutil.rmtree(copy, ignore_errors=True)
        self._copies.clear()
        run_id = context.run.run_id if context.run is not None else None
        folder = intermediates.run_folder(self._root(), run_id) if run_id else None
        owner = intermediates.read_owner(folder) if folder is not None else None
        if owner is not None and intermediates.runs_whole_run(owner):
            intermediates.remove(folder)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        self._claim(context)
        stem = self._stem(context)
        stem.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(obj, pd.DataFrame):
            target = stem.with_suffix(".parquet")
            table = pa.Table.from_pandas(obj, preserve_index=False)
            if obj.attrs:
                meta = {**(table.schema.metadata or {}), ATTRS_KEY: json.dumps(obj.attrs).encode()}
                table = table.replace_schema_metadata(meta)
            intermediates.write_whole(target, lambda f: pq.write_table(table, f, compression="zstd"))
        elif isinstance(obj, SliceSet):
            target = stem.with_suffix(".npz")
            intermediates.write_whole(target, lambda f: np.savez(
                f, images=obj.images, position=obj.position, subject=obj.subject.astype(str), index=obj.index,
                meta=np.array(json.dumps(obj.meta, sort_keys=True))))
        elif isinstance(obj, Path) and obj.is_dir():
            target = stem
            _store_dir(obj, target)
        else:
            target = stem.with_suffix(".json")
            text = json.dumps(obj, indent=1, sort_keys=True, default=str).encode()
            intermediates.write_whole(target, lambda f: f.write(text))
        context.add_output_metadata({"path": dg.MetadataValue.path(str(target))})

    def load_input(self, context: dg.InputContext) -> Any:
        stem = self._stem(context)
        pqt = stem.with_suffix(".parquet")
        if pqt.exists():
            with pqt.open("rb") as f:
                table = pq.read_table(f)
            df = table.to_pandas()
            raw = (table.schema.metadata or {}).get(ATTRS_KEY)
            if raw is not None:
                df.attrs.update(json.loads(raw))
            return df
        npz = stem.with_suffix(".npz")
        if npz.exists():
            with npz.open("rb") as f, np.load(f, allow_pickle=False) as z:
                return SliceSet(z["images"], z["position"], z["subject"], z["index"], json.loads(str(z["meta"])))
        if stem.is_dir():
            if intermediates.is_local(stem):
                return Path(stem)
            copy = tempfile.mkdtemp(prefix=f"{stem.name}-")
            self._copies.append(copy)
            stem.fs.get(stem.path.rstrip("/") + "/", copy + "/", recursive=True)
            return Path(copy)
        js = stem.with_suffix(".json")
        if js.exists():
            return json.loads(js.read_text())
        raise FileNotFoundError(
            f"{stem}.parquet|.npz|.json: upstream asset {context.asset_key.to_user_string()} was not materialized in "
            "this run (intermediates are per run and removed when it ends: materialize the whole job)")


def _store_dir(source: Path, target: UPath) -> None:
    """Move a directory the step wrote into the store, replacing an earlier attempt's: locally by
    renames, on an object store by an upload (the files are read only after the step succeeded)."""
    if intermediates.is_local(target):
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)
        shutil.move(str(source), target)
        shutil.rmtree(old, ignore_errors=True)
        return
    intermediates.rmtree(target)
    target.fs.put(str(source).rstrip("/") + "/", target.path.rstrip("/") + "/", recursive=True)
    shutil.rmtree(source, ignore_errors=True)


def _finished(instance: dg.DagsterInstance | None, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id) if instance is not None else None
    return run is not None and run.is_finished
