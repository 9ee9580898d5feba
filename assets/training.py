"""train_split -> fitted_generator -> synthetic_candidate."""

import tempfile
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from resources import ComputeDevice, PipelineSettings
from synth_pipeline.generators.base import load_generator, make_generator
from synth_pipeline.hashing import frame_sha256
from synth_pipeline.schema import Schema

GROUP = "tabular"


@dg.asset(group_name=GROUP, kinds={"pytorch"}, pool="gpu")
def fitted_generator(
    context: dg.AssetExecutionContext, train_split: pd.DataFrame, settings: PipelineSettings, device: ComputeDevice
) -> Path:
    """The generator fitted on train, saved as the files it writes itself (a directory)."""
    cfg = settings.run_config()
    schema = Schema.from_dict(train_split.attrs["schema"])
    params = dict(cfg.generator_params)
    gen = make_generator(cfg.generator, **params)
    context.log.info(f"fitting {cfg.generator} on {len(train_split)} rows (device {device.resolve()})")
    start = time.perf_counter()
    gen.fit(train_split, schema, target=schema.target, seed=cfg.seed)
    out = Path(tempfile.mkdtemp(prefix="generator-"))
    gen.save(out)
    context.add_output_metadata(
        {"generator": cfg.generator, "params": dg.MetadataValue.json(params), "fit_seconds": round(time.perf_counter() - start, 2)}
    )
    return out


@dg.asset(group_name=GROUP, kinds={"pandas"})
def synthetic_candidate(
    context: dg.AssetExecutionContext, fitted_generator: Path, train_split: pd.DataFrame, settings: PipelineSettings
) -> pd.DataFrame:
    """n synthetic rows (default: as many as train). Not released until every gate passes."""
    cfg = settings.run_config()
    gen = load_generator(fitted_generator)
    n = cfg.n_rows or len(train_split)
    start = time.perf_counter()
    candidate = gen.sample(n, seed=cfg.seed)
    candidate.attrs = {"schema": train_split.attrs["schema"]}
    context.add_output_metadata(
        {"rows": len(candidate), "sha256": frame_sha256(candidate), "sample_seconds": round(time.perf_counter() - start, 2)}
    )
    return candidate
