"""train_split -> fitted_generator -> synthetic_candidate."""

import tempfile
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.refusal import final_on_bad_input, refuse
from resources import ComputeDevice, PipelineSettings, ReleaseStore
from synth_pipeline.copies import filter_rare_copies, generator_redraw
from synth_pipeline.errors import BadInput, GeneratorError
from synth_pipeline.generators.base import load_generator, make_generator
from synth_pipeline.hashing import frame_sha256
from synth_pipeline.near_copies import distance_floor, quantile_for
from synth_pipeline.schema import Schema

GROUP = "tabular"


@dg.asset(group_name=GROUP, kinds={"pytorch"}, pool="gpu")
@final_on_bad_input
def fitted_generator(
    context: dg.AssetExecutionContext, train_split: pd.DataFrame, settings: PipelineSettings, device: ComputeDevice,
    release_store: ReleaseStore,
) -> Path:
    """The generator fitted on train, saved as the files it writes itself (a directory). A generator
    that cannot handle this table records a refusal naming itself and the reason."""
    cfg = settings.run_config()
    schema = Schema.from_dict(train_split.attrs["schema"])
    gen = make_generator(cfg.generator, device=device.resolve(), **cfg.generator_params)
    context.log.info(f"fitting {cfg.generator} on {len(train_split)} rows (device {device.resolve()})")
    start = time.perf_counter()
    try:
        gen.fit(train_split, schema, target=schema.target, seed=cfg.seed)
    except GeneratorError as e:
        refuse(context, release_store, schema.dataset, "generator", str(e), config=cfg.to_dict())
    out = Path(tempfile.mkdtemp(prefix="generator-"))
    gen.save(out)
    context.add_output_metadata(
        {"generator": cfg.generator, "params": dg.MetadataValue.json(cfg.generator_params),
         "fit_seconds": round(time.perf_counter() - start, 2)}
    )
    return out


@dg.asset(group_name=GROUP, kinds={"pandas"})
@final_on_bad_input
def synthetic_candidate(
    context: dg.AssetExecutionContext, fitted_generator: Path, train_split: pd.DataFrame, settings: PipelineSettings,
    release_store: ReleaseStore, device: ComputeDevice,
) -> pd.DataFrame:
    """n synthetic rows (default: as many as train), of one class when `conditions` names it, with
    every copy of a training combination fewer than k training rows share, and with
    `near_copy_quantile` every row closer to a training row than that floor, redrawn or removed
    (synth_pipeline.copies, synth_pipeline.near_copies); a filter that bent the cohort refuses. Not released until every gate passes."""
    cfg = settings.run_config()
    schema = Schema.from_dict(train_split.attrs["schema"])
    gen = load_generator(fitted_generator, device=device.resolve())
    n = cfg.n_rows or len(train_split)
    if cfg.conditions and set(cfg.conditions) != {schema.target}:
        raise BadInput(f"conditions {cfg.conditions}: only the target column '{schema.target}' can be conditioned on")
    conditions = pd.DataFrame({k: [v] for k, v in cfg.conditions.items()}) if cfg.conditions else None
    start = time.perf_counter()
    try:
        candidate = gen.sample(n, seed=cfg.seed, conditions=conditions)
        sampled = time.perf_counter() - start
        candidate, copies = filter_rare_copies(candidate, train=train_split, schema=schema, k=cfg.small_cell_k,
                                               redraw=generator_redraw(gen, schema.target), seed=cfg.seed,
                                               near=distance_floor(train_split, schema, quantile_for(cfg.near_copy_quantile, gen)))
    except GeneratorError as e:
        refuse(context, release_store, schema.dataset, "generator", str(e), config=cfg.to_dict())
    if not copies.passed:
        refuse(context, release_store, schema.dataset, "copy_filter", copies.reason(), config=cfg.to_dict(),
               copy_filter=copies.to_dict())
    candidate.attrs = {"schema": train_split.attrs["schema"], "copy_filter": copies.to_dict(),
                       "privacy": getattr(gen, "privacy", None),  # a DP generator's (epsilon, delta) record
                       "selection": getattr(gen, "selection", None)}  # auto's candidates and choice
    context.add_output_metadata(
        {"rows": len(candidate), "sha256": frame_sha256(candidate), "sample_seconds": round(sampled, 2),
         "copy_filter": dg.MetadataValue.json(copies.to_dict()), "rare_copies_redrawn": copies.redrawn,
         "rare_copies_removed": copies.removed, "near_copies": copies.near_copies}
    )
    return candidate
