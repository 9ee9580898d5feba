"""IO manager: DataFrames as Parquet and MRI slice sets as .npz (never pickles), reports and references as JSON.

A table's `attrs` (its Schema, the input file's hash) travel with it in the Parquet key-value
metadata, so every downstream asset knows the column types and provenance without re-reading the
source. A returned directory (a fitted generator's files) is moved into the store and loaded back as
its Path. Files are written to a temporary name and
renamed, so a killed step never leaves a half-written table behind.

Intermediates hold real rows, so every run gets its own folder `<base_dir>/<run_id>/`
(synth_pipeline.intermediates), removed when the run ends unless `keep_intermediates` is set: here at
teardown when one process ran the whole run (in-process executor, the CLI), by the run-end sensors
(assets/operations.py) after a multiprocess run, and by the next run's sweep after a killed one. A
run therefore never reads another run's tables.
"""

import json
import os
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synth_pipeline import intermediates
from synth_pipeline.imaging.slices import SliceSet

ATTRS_KEY = b"synth_pipeline.attrs"


class ParquetIOManager(dg.ConfigurableIOManager):
    """`base_dir` holds one folder per run; `keep_intermediates` keeps a run's folder after it ends."""

    base_dir: str = ".work"
    keep_intermediates: bool = False

    def _stem(self, context: dg.OutputContext | dg.InputContext) -> Path:
        return Path(self.base_dir, context.step_context.run_id).joinpath(*context.asset_key.path)

    def _claim(self, context: dg.OutputContext) -> None:
        """This run's folder (owner record first); the first claim also sweeps folders of runs that are over."""
        run_id = context.step_context.run_id
        if intermediates.read_owner(Path(self.base_dir, run_id)) is None:
            instance = context.step_context.instance
            intermediates.sweep(Path(self.base_dir), lambda rid: _finished(instance, rid), spare=run_id)
        intermediates.claim(Path(self.base_dir), run_id, keep=self.keep_intermediates)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """When the process that ran the whole run tears down, the run is over: remove its folder."""
        run_id = context.run.run_id if context.run is not None else None
        owner = intermediates.read_owner(Path(self.base_dir, run_id)) if run_id else None
        if owner is not None and owner.pid == os.getpid():
            intermediates.remove(Path(self.base_dir, run_id))

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
            tmp = target.with_suffix(".parquet.tmp")
            pq.write_table(table, tmp, compression="zstd")
        elif isinstance(obj, SliceSet):
            target = stem.with_suffix(".npz")
            tmp = stem.with_suffix(".tmp.npz")
            np.savez(tmp, images=obj.images, position=obj.position, subject=obj.subject.astype(str),
                     index=obj.index, meta=np.array(json.dumps(obj.meta, sort_keys=True)))
        elif isinstance(obj, Path) and obj.is_dir():
            target = stem
            old = stem.with_name(stem.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            if target.exists():
                os.replace(target, old)
            shutil.move(str(obj), target)
            shutil.rmtree(old, ignore_errors=True)
            context.add_output_metadata({"path": dg.MetadataValue.path(str(target))})
            return
        else:
            target = stem.with_suffix(".json")
            tmp = target.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
        os.replace(tmp, target)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(target))})

    def load_input(self, context: dg.InputContext) -> Any:
        stem = self._stem(context)
        pqt = stem.with_suffix(".parquet")
        if pqt.exists():
            table = pq.read_table(pqt)
            df = table.to_pandas()
            raw = (table.schema.metadata or {}).get(ATTRS_KEY)
            if raw is not None:
                df.attrs.update(json.loads(raw))
            return df
        npz = stem.with_suffix(".npz")
        if npz.exists():
            with np.load(npz, allow_pickle=False) as z:
                return SliceSet(z["images"], z["position"], z["subject"], z["index"], json.loads(str(z["meta"])))
        if stem.is_dir():
            return stem
        js = stem.with_suffix(".json")
        if js.exists():
            return json.loads(js.read_text())
        raise FileNotFoundError(
            f"{stem}.parquet|.npz|.json: upstream asset {context.asset_key.to_user_string()} was not materialized in "
            "this run (intermediates are per run and removed when it ends: materialize the whole job)")


def _finished(instance: dg.DagsterInstance | None, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id) if instance is not None else None
    return run is not None and run.is_finished
