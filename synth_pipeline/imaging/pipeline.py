"""The MRI arm's steps as plain functions (the Dagster assets in assets/mri.py are thin wrappers):
ingest -> split -> fit -> sample -> evaluate -> (gates) -> release files + manifest."""

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from synth_pipeline.data import slugify
from synth_pipeline.imaging.config import MriConfig
from synth_pipeline.imaging.slices import SliceSet
from synth_pipeline.metrics.base import MetricResult

COHORT_SEED = 0  # the bundled pseudo-cohort is data: it does not change with the run's seed


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


def synthetic_set(images: np.ndarray, positions: np.ndarray) -> SliceSet:
    n = len(images)
    return SliceSet(images.astype(np.float32), positions.astype(np.float32), np.array(["synthetic"] * n),
                    np.arange(n, dtype=np.int64))


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def metrics_by_name(metrics: list[MetricResult]) -> dict[str, MetricResult]:
    return {m.name: m for m in metrics}


def slices_per_volume(slices: SliceSet) -> int:
    counts = list(slices.meta.get("slices_per_subject", {}).values()) or [len(slices)]
    return int(np.median(counts))


def synthetic_volume(gen, train: SliceSet, seed: int) -> np.ndarray:
    """A whole synthetic volume: every position sampled, as many slices as a typical real volume."""
    from synth_pipeline.imaging.assemble import assemble_volume

    return assemble_volume(gen, slices_per_volume(train), seed=seed)


def exact_slice_copies(fake: SliceSet, reference: SliceSet) -> int:
    """How many synthetic slices equal a real slice pixel for pixel: the last guard before publishing."""
    ref = {np.ascontiguousarray(img, dtype=np.float32).tobytes() for img in reference.images}
    return sum(np.ascontiguousarray(img, dtype=np.float32).tobytes() in ref for img in fake.images)


def release_contents(gen, cfg: MriConfig, fake: SliceSet, train: SliceSet, holdout: SliceSet, report: dict,
                     *, gates: list[dict], release_id: str, dagster: dict) -> tuple[dict[str, bytes], dict]:
    """The files and the manifest of an image release. Only synthetic images are written."""
    from synth_pipeline.imaging import publish as pub
    from synth_pipeline.imaging.report import render_mri_report
    from synth_pipeline.release import code_version, package_versions, utc_now

    voxel_mm = tuple(train.meta["voxel_mm"])
    files = {pub.SLICES_FILE: pub.nifti_bytes(fake.images[:, 0], voxel_mm),
             pub.POSITIONS_FILE: pub.positions_csv(fake.position),
             pub.MONTAGE_FILE: pub.montage_by_position(fake)}
    if gen.conditional:
        files[pub.VOLUME_FILE] = pub.nifti_bytes(synthetic_volume(gen, train, cfg.seed), voxel_mm)
    manifest = {
        "arm": "mri", "verdict": "published", "dataset": train.meta["dataset"], "created_at": utc_now(),
        "n_slices": len(fake), "synthetic_sha256": report["candidate_sha256"],
        "input": {"data": cfg.data, "sources": train.meta["sources"], "skipped": train.meta["skipped"],
                  "train_subjects": train.subjects(), "holdout_subjects": holdout.subjects(),
                  "train_slices": len(train), "holdout_slices": len(holdout)},
        "config": cfg.to_dict(), "seed": cfg.seed, "model": cfg.model, "thresholds": cfg.to_dict()["thresholds"],
        "code_version": code_version(), "packages": package_versions(MRI_PACKAGES),
        "gates": gates, "metrics": report["metrics"], "volume": report.get("volume"),
        "timing": report.get("timing"), "dagster": dagster,
    }
    files["report.html"] = render_mri_report({**manifest, "release_id": release_id},
                                             files[pub.MONTAGE_FILE]).encode()
    return files, manifest


MRI_PACKAGES = ("numpy", "scipy", "torch", "monai", "nibabel", "nilearn", "dagster")
