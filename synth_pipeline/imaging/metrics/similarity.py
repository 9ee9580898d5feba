"""Position-matched SSIM and PSNR: is a generated slice at position p similar to real slices at p?

Matching: for each query slice at position p, every reference subject (at most `max_subjects`,
drawn with the seed) contributes its one slice closest to p; the query's score is the mean over
those pairs. One slice per subject, not the mean of the k nearest, because a mean image is blurred
and SSIM would reward blurry samples. Scores are MONAI's SSIMMetric / PSNRMetric with data range 2
([-1, 1]); a pair's PSNR is capped at PSNR_CAP dB so identical images stay finite. Anatomy differs
between subjects, so even real slices score well below 1: the real-vs-real reference (holdout
slices against train slices, matched the same way) in `detail` is the number to compare with.
"""

import numpy as np
import torch

from synth_pipeline.errors import BadInput
from synth_pipeline.nn.training import num_threads
from synth_pipeline.imaging.metrics.bootstrap import CI_LEVEL, percentile_ci
from synth_pipeline.imaging.metrics.features import as_images
from synth_pipeline.imaging.slices import SliceSet
from synth_pipeline.metrics.base import MetricResult

PSNR_CAP = 100.0
N_BOOT = 200
_PAIR_BATCH = 512


def bootstrap_mean_ci(values: np.ndarray, seed: int, n_boot: int = N_BOOT) -> tuple[float, float]:
    """Percentile CI of the mean of `values` over seeded bootstrap resamples."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    return percentile_ci([values[rng.integers(0, len(values), len(values))].mean() for _ in range(n_boot)])


def pair_scores(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(SSIM, PSNR capped at PSNR_CAP) of each pair a[i], b[i], both (n, 1, H, W) in [-1, 1]."""
    from monai.metrics import PSNRMetric, SSIMMetric

    ssim, psnr = SSIMMetric(spatial_dims=2, data_range=2.0), PSNRMetric(max_val=2.0)
    out_s, out_p = np.empty(len(a)), np.empty(len(a))
    with torch.no_grad(), num_threads(1):
        for lo in range(0, len(a), _PAIR_BATCH):
            x = torch.from_numpy(np.ascontiguousarray(a[lo : lo + _PAIR_BATCH]))
            y = torch.from_numpy(np.ascontiguousarray(b[lo : lo + _PAIR_BATCH]))
            out_s[lo : lo + len(x)] = ssim(x, y).double().numpy().ravel()
            out_p[lo : lo + len(x)] = psnr(x, y).double().numpy().ravel()
    return out_s, np.minimum(out_p, PSNR_CAP)


def matched_pairs(positions: np.ndarray, reference: SliceSet, max_subjects: int, seed: int) -> np.ndarray:
    """(n, s) reference indices: for each query position, each chosen subject's closest slice."""
    subjects = reference.subjects()
    if len(subjects) > max_subjects:
        subjects = sorted(np.random.default_rng(seed).choice(subjects, max_subjects, replace=False).tolist())
    cols = []
    for s in subjects:
        own = np.nonzero(reference.subject == s)[0]
        gap = np.abs(np.asarray(positions, float)[:, None] - reference.position[own][None, :])
        cols.append(own[np.argmin(gap, axis=1)])
    return np.stack(cols, axis=1)


def matched_scores(images: np.ndarray, positions: np.ndarray, reference: SliceSet, *, max_subjects: int = 10,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per query slice: mean SSIM and mean PSNR against its position-matched reference slices."""
    if images.shape[1:] != reference.images.shape[1:]:
        raise BadInput(f"similarity: image shape {images.shape[1:]} differs from the real slices' "
                       f"{reference.images.shape[1:]}")
    if len(positions) != len(images):
        raise BadInput(f"similarity: {len(positions)} positions for {len(images)} images")
    pairs = matched_pairs(positions, reference, max_subjects, seed)
    q = np.repeat(np.arange(len(images)), pairs.shape[1])
    s, p = pair_scores(images[q], reference.images[pairs.ravel()])
    return s.reshape(pairs.shape).mean(axis=1), p.reshape(pairs.shape).mean(axis=1)


def position_matched_similarity(fake: np.ndarray, positions: np.ndarray, holdout: SliceSet,
                                train: SliceSet | None = None, *, max_subjects: int = 10, seed: int = 0
                                ) -> tuple[MetricResult, MetricResult]:
    """`ssim_matched` and `psnr_matched` of generated slices (at their requested positions) against the
    holdout, mean over slices with a bootstrap CI; with `train`, detail["real_reference"] holds the same
    numbers for holdout slices against train slices."""
    fake = as_images(fake, "fake")
    ssim, psnr = matched_scores(fake, positions, holdout, max_subjects=max_subjects, seed=seed)
    info = {"n_fake": len(fake), "subjects_matched": min(max_subjects, len(holdout.subjects())),
            "psnr_cap_db": PSNR_CAP, "data_range": 2.0, "ci": f"{CI_LEVEL:.0%} bootstrap over generated slices"}
    ref_s = ref_p = None
    if train is not None:
        ref_s, ref_p = (float(v.mean()) for v in matched_scores(holdout.images, holdout.position, train,
                                                                max_subjects=max_subjects, seed=seed))
    compared = "synthetic vs position-matched holdout slices"
    return (MetricResult("ssim_matched", float(ssim.mean()), ci=bootstrap_mean_ci(ssim, seed), compared=compared,
                         detail={**info, "real_reference": ref_s}),
            MetricResult("psnr_matched", float(psnr.mean()), ci=bootstrap_mean_ci(psnr, seed), compared=compared,
                         detail={**info, "real_reference": ref_p}))
