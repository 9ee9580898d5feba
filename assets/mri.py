"""The MRI asset group, same shape as the tabular chain:
mri_slices -> mri_train_slices, mri_holdout_slices -> mri_fitted_generator -> mri_synthetic_slices,
mri_synthetic_volume -> mri_image_metrics (+ blocking checks mri_memorisation_gate, mri_fidelity_gate) -> mri_release."""

import tempfile
from pathlib import Path

import dagster as dg

from assets.audit_view import release_metadata
from assets.gates import gate_check_result, read_gate
from assets.refusal import final_on_bad_input, refuse
from assets.release import release_day
from assets.run_log import lineage
from resources import ComputeDevice, DaskCluster, MriSettings, ReleaseStore
from synth_pipeline.errors import GeneratorError
from synth_pipeline.imaging import pipeline
from synth_pipeline.imaging.config import mri_gate_settings_sha256
from synth_pipeline.imaging.gates import MRI_GATES, judge_all
from synth_pipeline.imaging.models.base import load_image_generator, make_image_generator
from synth_pipeline.imaging.publish import candidate_sha256
from synth_pipeline.imaging.slices import SliceSet
from synth_pipeline.metrics.base import MetricResult
from synth_pipeline.kernel import release_candidate

GROUP = "mri"
METRICS = dg.AssetKey("mri_image_metrics")
MRI_UPSTREAM = ("mri_slices", "mri_train_slices", "mri_holdout_slices", "mri_fitted_generator", "mri_synthetic_slices",
                "mri_synthetic_volume", "mri_image_metrics")
DESCRIPTIONS = {
    "mri_memorisation_gate": "Memorisation rate in pixel and feature space (DCR share reported), exact copies of training slices.",
    "mri_fidelity_gate": "FID(synthetic, holdout) / FID(noise reference, holdout) at most the threshold.",
}


@dg.asset(group_name=GROUP, kinds={"nibabel"})
@final_on_bad_input
def mri_slices(context: dg.AssetExecutionContext, mri_settings: MriSettings) -> SliceSet:
    """Ingestion and preprocessing: every readable NIfTI volume (reoriented, resampled, brain-masked,
    intensity-normalised) as axial slices with their normalised position. Unreadable files are
    skipped, named, and listed in the manifest."""
    cfg = mri_settings.mri_config()
    slices = pipeline.ingest(cfg, pipeline.cache_dir())
    for s in slices.meta["skipped"]:
        context.log.warning(f"skipped {s['file']}: {s['reason']}")
    context.add_output_metadata({"dataset": slices.meta["dataset"], "volumes": len(slices.meta["sources"]),
                                 "skipped": len(slices.meta["skipped"]), "slices": len(slices)})
    return slices


@dg.multi_asset(
    group_name=GROUP,
    outs={"mri_train_slices": dg.AssetOut(description="Slices of the training subjects.", kinds={"numpy"}),
          "mri_holdout_slices": dg.AssetOut(description="Slices of subjects never trained on.", kinds={"numpy"})},
)
@final_on_bad_input
def mri_split(context: dg.AssetExecutionContext, mri_slices: SliceSet, mri_settings: MriSettings):
    """Subject-level, seeded: no subject contributes slices to both sides."""
    train, holdout = pipeline.split(mri_slices, mri_settings.mri_config())
    return tuple(dg.Output(part, output_name=name, metadata={"slices": len(part), "subjects": len(part.subjects())})
                 for name, part in (("mri_train_slices", train), ("mri_holdout_slices", holdout)))


@dg.asset(group_name=GROUP, kinds={"pytorch"}, pool="gpu")
@final_on_bad_input
def mri_fitted_generator(
    context: dg.AssetExecutionContext, mri_train_slices: SliceSet, mri_settings: MriSettings, device: ComputeDevice,
    release_store: ReleaseStore,
) -> Path:
    cfg = mri_settings.mri_config()
    gen = make_image_generator(cfg.model, budget=cfg.budget, device=device.resolve(), **cfg.model_params)
    context.log.info(f"fitting {cfg.model} ({cfg.budget}) on {len(mri_train_slices)} slices (device {device.resolve()})")
    try:
        _, seconds = pipeline.timed(gen.fit, mri_train_slices, seed=cfg.seed)
    except GeneratorError as e:
        refuse(context, release_store, mri_train_slices.meta["dataset"], "generator", str(e), config=cfg.to_dict())
    out = Path(tempfile.mkdtemp(prefix="mri-generator-"))
    gen.save(out)
    context.add_output_metadata({"model": cfg.model, "budget": cfg.budget, "fit_seconds": round(seconds, 2)})
    return out


@dg.asset(group_name=GROUP, kinds={"numpy"})
@final_on_bad_input
def mri_synthetic_slices(
    context: dg.AssetExecutionContext, mri_fitted_generator: Path, mri_holdout_slices: SliceSet,
    mri_settings: MriSettings, device: ComputeDevice,
) -> SliceSet:
    """One synthetic slice per holdout position (position-matched). Not released until the gates pass."""
    cfg = mri_settings.mri_config()
    gen = load_image_generator(mri_fitted_generator, device=device.resolve())
    positions = pipeline.sample_positions(mri_holdout_slices, cfg)
    images, seconds = pipeline.timed(gen.sample, positions, seed=cfg.seed + 1)
    fake = pipeline.synthetic_set(images, positions)
    context.add_output_metadata({"slices": len(fake), "sha256": candidate_sha256(fake), "sample_seconds": round(seconds, 2)})
    return fake


@dg.asset(group_name=GROUP, kinds={"numpy"})
@final_on_bad_input
def mri_synthetic_volume(
    context: dg.AssetExecutionContext, mri_fitted_generator: Path, mri_train_slices: SliceSet,
    mri_settings: MriSettings, device: ComputeDevice,
) -> SliceSet:
    """One whole synthetic volume (every position sampled), for the consistency metric and the release."""
    gen = load_image_generator(mri_fitted_generator, device=device.resolve())
    volume, seconds = pipeline.timed(pipeline.synthetic_volume, gen, mri_train_slices, mri_settings.mri_config().seed)
    context.add_output_metadata({"slices": len(volume), "assemble_seconds": round(seconds, 2)})
    return volume


@dg.asset(group_name=GROUP, kinds={"numpy"})
def mri_image_metrics(
    context: dg.AssetExecutionContext, mri_synthetic_slices: SliceSet, mri_synthetic_volume: SliceSet,
    mri_train_slices: SliceSet, mri_holdout_slices: SliceSet, mri_settings: MriSettings, cluster: DaskCluster,
) -> dict:
    """Every image metric (FID, KID, SSIM, PSNR, conditioning error, memorisation in pixel and feature
    space) and the assembled volume's slice-to-slice consistency, for the candidate named by sha256."""
    cfg = mri_settings.mri_config()
    with cluster.active():  # the memorisation search
        report = pipeline.evaluate(mri_synthetic_slices, mri_synthetic_volume, mri_train_slices, mri_holdout_slices,
                                   seed=cfg.seed)
    context.add_output_metadata({m["name"]: m["value"] for m in report["metrics"] if isinstance(m["value"], (int, float))})
    return report


def _gate_check(name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(name=name, asset=METRICS, blocking=True, description=DESCRIPTIONS[name])
    def _check(context: dg.AssetCheckExecutionContext, mri_image_metrics: dict, mri_settings: MriSettings,
               release_store: ReleaseStore) -> dg.AssetCheckResult:
        cfg = mri_settings.mri_config()
        metrics = [MetricResult.from_dict(m) for m in mri_image_metrics["metrics"]]
        result = next(g for g in judge_all(metrics, cfg.thresholds) if g.gate == name)
        return gate_check_result(context, release_store, mri_image_metrics["dataset"], result,
                                 candidate_sha256=mri_image_metrics["candidate_sha256"],
                                 settings_sha256=mri_gate_settings_sha256(cfg), config=cfg.to_dict())

    return _check


MRI_GATE_CHECKS = [_gate_check(name) for name in MRI_GATES]


@dg.asset(group_name=GROUP, kinds={"nibabel"})
def mri_release(
    context: dg.AssetExecutionContext, mri_synthetic_slices: SliceSet, mri_train_slices: SliceSet,
    mri_holdout_slices: SliceSet, mri_image_metrics: dict, mri_synthetic_volume: SliceSet, mri_settings: MriSettings,
    release_store: ReleaseStore,
) -> dg.MaterializeResult:
    """Publishes `<root>/<dataset>/<release_id>/` (NIfTI slices + positions, assembled volume, montage,
    report, manifest) through the release kernel only if both gates passed for *this* candidate in this
    run and no synthetic slice equals a training slice; otherwise a final refusal."""
    cfg = mri_settings.mri_config()
    dataset = str(mri_train_slices.meta["dataset"])
    run_id = context.run.run_id
    sha = candidate_sha256(mri_synthetic_slices)
    read = {g: read_gate(context.instance, g, run_id, METRICS) for g in MRI_GATES}
    copies = pipeline.exact_slice_copies(mri_synthetic_slices, mri_train_slices)

    def build(release_id: str, base: dict) -> tuple[dict[str, bytes], dict]:
        return pipeline.release_contents(cfg, mri_synthetic_slices, mri_synthetic_volume, mri_train_slices,
                                         mri_holdout_slices, mri_image_metrics, release_id=release_id, base=base)

    decision = release_candidate(
        root=release_store.path, arm="mri", dataset=dataset, model=cfg.model, day=release_day(context),
        candidate_sha256=sha, settings_sha256=mri_gate_settings_sha256(cfg), gates=MRI_GATES,
        records={g: r for g, (r, _) in read.items()}, results={g: res for g, (_, res) in read.items()},
        last_line=[f"release: {copies} synthetic slices equal a real training slice"] if copies else [],
        config=cfg.to_dict(), overrides=cfg.overrides(),
        dagster={"run_id": run_id, "job": context.run.job_name,
                 "lineage": lineage(context.instance, run_id, MRI_UPSTREAM)},
        packages=pipeline.MRI_PACKAGES, build=build,
    )
    if not decision.published:
        refuse(context, release_store, dataset, "release", decision.reason, config=cfg.to_dict(), candidate_sha256=sha)
    return dg.MaterializeResult(metadata={
        "verdict": "published", "synthetic_sha256": sha, "slices": len(mri_synthetic_slices),
        **release_metadata(dataset=dataset, input_sha256=None, release_id=decision.release_id, path=decision.path,
                           gates=decision.manifest["gates"], rows=len(mri_synthetic_slices)),
    })


MRI_ASSETS = [mri_slices, mri_split, mri_fitted_generator, mri_synthetic_slices, mri_synthetic_volume,
              mri_image_metrics, mri_release]
