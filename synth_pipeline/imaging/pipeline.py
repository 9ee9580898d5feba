"""The MRI arm's steps as plain functions (the Dagster assets in assets/mri.py are thin wrappers):
ingest -> split -> fit -> sample -> evaluate -> (gates) -> release files + manifest."""

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from synth_pipeline.data import slugify
from synth_pipeline.imaging.config import MriConfig
from synth_pipeline.imaging.slices import SliceSet
from synth_pipeline.metrics.base import MetricResult

MRI_PACKAGES = ("numpy", "scipy", "torch", "monai", "nibabel", "nilearn", "dagster")  # versions in the manifest
COHORT_SEED = 0  # the bundled pseudo-cohort is data: it does not change with the run's seed


def cache_dir() -> Path:
    """Where the bundled pseudo-cohort is generated once and reused (it is deterministic)."""
    return Path(os.environ.get("SYNTH_PIPELINE_CACHE", ".work/cache"))


def dataset_name(cfg: MriConfig) -> str:
    return "mri-mni152-pseudo" if cfg.data == "default" else "mri-" + slugify(Path(cfg.data).name)


def ingest(cfg: MriConfig, work_dir: Path) -> SliceSet:
    """Every readable volume of the folder (the bundled pseudo-cohort for "default") as axial slices
    with their positions; unreadable files are listed in meta["skipped"], not fatal."""
    from synth_pipeline.imaging.cohort import default_cohort
    from synth_pipeline.imaging.volumes import GRID_MM, GRID_SHAPE, extract_slices, load_folder

    folder = default_cohort(Path(work_dir), n_subjects=cfg.cohort_subjects, seed=COHORT_SEED) \
        if cfg.data == "default" else Path(cfg.data)
    result = load_folder(folder)
    slices = extract_slices(result.volumes, size=cfg.size)
    meta = {
        "data": cfg.data, "folder": str(folder), "dataset": dataset_name(cfg),
        "sources": [{"subject": v.subject, "file": Path(v.source).name, "sha256": v.sha256} for v in result.volumes],
        "skipped": [{"file": s.file, "reason": s.reason} for s in result.skipped],
        "slices_per_subject": {s: int((slices.subject == s).sum()) for s in slices.subjects()},
        "voxel_mm": [GRID_MM * max(GRID_SHAPE[:2]) / cfg.size] * 2 + [GRID_MM],
    }
    return replace(slices, meta=meta)


def split(slices: SliceSet, cfg: MriConfig) -> tuple[SliceSet, SliceSet]:
    from synth_pipeline.imaging.volumes import split_by_subject

    train, holdout = split_by_subject(slices, holdout_fraction=cfg.holdout_fraction, seed=cfg.seed)
    return train, holdout


def sample_positions(holdout: SliceSet, cfg: MriConfig) -> np.ndarray:
    """Position-matched sampling: one synthetic slice per holdout slice at its position (or n_samples
    positions drawn from the holdout's, seeded), so every comparison is like for like."""
    if cfg.n_samples is None:
        return holdout.position.astype(np.float32)
    rng = np.random.default_rng(cfg.seed)
    return np.sort(rng.choice(holdout.position, size=cfg.n_samples, replace=True)).astype(np.float32)


def matched_subjects(fake: SliceSet, holdout: SliceSet) -> np.ndarray | None:
    """The holdout subject each synthetic slice was generated for when sampling was position-matched
    one to one (`sample_positions` without n_samples), else None: the subject bootstrap keeps a
    synthetic slice with its subject."""
    if len(fake) == len(holdout) and np.array_equal(fake.position, holdout.position.astype(np.float32)):
        return holdout.subject
    return None


def synthetic_set(images: np.ndarray, positions: np.ndarray) -> SliceSet:
    n = len(images)
    return SliceSet(images.astype(np.float32), positions.astype(np.float32), np.array(["synthetic"] * n),
                    np.arange(n, dtype=np.int64))


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def slices_per_volume(slices: SliceSet) -> int:
    counts = list(slices.meta.get("slices_per_subject", {}).values()) or [len(slices)]
    return int(np.median(counts))


def synthetic_volume(gen, train: SliceSet, seed: int) -> SliceSet:
    """A whole synthetic volume: every position sampled, as many slices as a typical real volume.
    Assembled once; the metrics and the release both read it."""
    from synth_pipeline.imaging.assemble import assemble_volume

    n = slices_per_volume(train)
    volume = synthetic_set(assemble_volume(gen, n, seed=seed)[:, None], np.linspace(0.0, 1.0, n))
    return replace(volume, meta={"position_conditioned": bool(gen.conditional)})


def exact_slice_copies(fake: SliceSet, reference: SliceSet) -> int:
    """How many synthetic slices equal a real slice pixel for pixel: the last guard before publishing."""
    ref = {np.ascontiguousarray(img, dtype=np.float32).tobytes() for img in reference.images}
    return sum(np.ascontiguousarray(img, dtype=np.float32).tobytes() in ref for img in fake.images)


def release_contents(cfg: MriConfig, fake: SliceSet, volume: SliceSet, train: SliceSet, holdout: SliceSet, report: dict,
                     *, release_id: str, base: dict[str, Any]) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The files of an image release and the manifest fields only this arm knows; `base` holds the
    kernel's shared fields (synth_pipeline.kernel.release_candidate). Only synthetic images are written."""
    from synth_pipeline.imaging import publish as pub
    from synth_pipeline.imaging.report import render_mri_report

    voxel_mm = tuple(train.meta["voxel_mm"])
    files = {pub.SLICES_FILE: pub.nifti_bytes(fake.images[:, 0], voxel_mm),
             pub.POSITIONS_FILE: pub.positions_csv(fake.position),
             pub.MONTAGE_FILE: pub.montage_by_position(fake)}
    if volume.meta["position_conditioned"]:
        files[pub.VOLUME_FILE] = pub.nifti_bytes(volume.images[:, 0], voxel_mm)
    own = {
        "n_slices": len(fake), "model": cfg.model,
        "input": {"data": cfg.data, "sources": train.meta["sources"], "skipped": train.meta["skipped"],
                  "train_subjects": train.subjects(), "holdout_subjects": holdout.subjects(),
                  "train_slices": len(train), "holdout_slices": len(holdout)},
        "metrics": report["metrics"], "volume": report.get("volume"), "timing": report.get("timing"),
    }
    files["report.html"] = render_mri_report({**base, **own, "release_id": release_id},
                                             files[pub.MONTAGE_FILE]).encode()
    return files, own


NOISE_SIGMA_PX = 1.5


def noise_reference(like: SliceSet, seed: int) -> np.ndarray:
    """The fidelity gate's yardstick: smoothed Gaussian noise scaled to [-1, 1], one image per
    `like` slice. A useful generator is far closer to real slices than this is."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    noise = gaussian_filter(rng.standard_normal(like.images.shape), sigma=(0, 0, NOISE_SIGMA_PX, NOISE_SIGMA_PX))
    noise /= np.abs(noise).max(axis=(1, 2, 3), keepdims=True)
    return noise.astype(np.float32)


def real_neighbour_consistency(slices: SliceSet) -> float:
    """The same slice-to-slice consistency measured on real volumes (each subject's slices in order)."""
    from synth_pipeline.imaging.assemble import neighbour_consistency

    values = []
    for s in slices.subjects():
        sub = slices.take(slices.subject == s)
        values.append(neighbour_consistency(sub.images[np.argsort(sub.index), 0]))
    return float(np.mean(values))


def evaluate(fake: SliceSet, volume: SliceSet, train: SliceSet, holdout: SliceSet, *, seed: int,
             regressor=None) -> dict[str, Any]:
    """Every image metric of one candidate, as JSON: FID/KID against the holdout (with the real
    train-vs-holdout and noise-vs-holdout FIDs for scale), `fid_ratio` for the fidelity gate,
    position-matched SSIM/PSNR, the conditioning error, memorisation in pixel and feature space, and
    the assembled volume's neighbouring-slice consistency against real volumes'. `regressor`: a position
    regressor already fitted on `train` with `seed` (a benchmark scoring many models fits it once)."""
    from synth_pipeline.imaging.assemble import neighbour_consistency
    from synth_pipeline.imaging.metrics.conditioning import conditioning_mae
    from synth_pipeline.imaging.metrics.features import extract, feature_net
    from synth_pipeline.imaging.metrics.fid import fid, fid_kid
    from synth_pipeline.imaging.metrics.memorisation import memorisation_metrics
    from synth_pipeline.imaging.metrics.similarity import position_matched_similarity
    from synth_pipeline.imaging.publish import candidate_sha256

    timing: dict[str, float] = {}
    net = feature_net()
    subset = min(1000, len(fake), len(holdout))
    matched = matched_subjects(fake, holdout)
    (fid_m, kid_m), timing["fid_kid_s"] = timed(fid_kid, holdout, fake.images, net=net, seed=seed,
                                                 subset_size=subset, compared="synthetic vs holdout",
                                                 fake_subject=matched)
    hold_f = extract(holdout.images, net)
    real_fid = fid(extract(train.images, net), hold_f)
    noise_fid = fid(extract(noise_reference(holdout, seed), net), hold_f)
    ratio = MetricResult("fid_ratio", float(fid_m.value) / noise_fid if fid_m.computed else None,
                         compared="FID(synthetic, holdout) / FID(smoothed noise, holdout)",
                         detail={"fid": fid_m.value, "noise_fid": noise_fid, "real_train_vs_holdout_fid": real_fid,
                                 "real_ratio": real_fid / noise_fid})
    (ssim_m, psnr_m), timing["similarity_s"] = timed(position_matched_similarity, fake.images, fake.position,
                                                     holdout, train, seed=seed)
    cond, timing["conditioning_s"] = timed(conditioning_mae, fake.images, fake.position, train, holdout, seed=seed,
                                 regressor=regressor)
    mem, timing["memorisation_s"] = timed(memorisation_metrics, fake.images, train, holdout, net=net, seed=seed,
                                              fake_subject=matched)
    metrics = [fid_m, kid_m, ratio, ssim_m, psnr_m, cond, *mem]
    return {
        "dataset": train.meta["dataset"], "candidate_sha256": candidate_sha256(fake),
        "metrics": [m.to_dict() for m in metrics],
        "volume": {"n_slices": len(volume), "neighbour_consistency": neighbour_consistency(volume.images[:, 0]),
                   "real_neighbour_consistency": real_neighbour_consistency(holdout),
                   "position_conditioned": volume.meta["position_conditioned"]},
        "timing": {k: round(v, 2) for k, v in timing.items()},
    }
