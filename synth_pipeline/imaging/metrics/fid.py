"""Fréchet Inception Distance and Kernel Inception Distance on the feature network's embeddings.

FID (Heusel et al. 2017): ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^1/2) between Gaussians fitted
to the two feature sets; 0 for identical sets, biased upwards at small n, so compare models at the
same n. KID (Binkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, averaged over random subsets; ~0 (and sometimes negative) for two samples
of one distribution, unbiased at any n. Both carry a 95% CI from a bootstrap over the real side's
subjects (bootstrap.py), the FID/KID of each draw recomputed from the features. Both depend on the
feature network (features.py): they are comparable only within one table, never with published
Inception numbers.
"""

import warnings

import numpy as np
from scipy import linalg

from synth_pipeline.imaging.metrics.bootstrap import percentile_ci, real_draws
from synth_pipeline.imaging.metrics.features import FeatureNet, as_images, extract, feature_net
from synth_pipeline.imaging.slices import SliceSet
from synth_pipeline.metrics.base import MetricResult

SQRTM_EPS = 1e-6
CI_DRAWS = 100  # each FID draw is a 256 x 256 matrix square root
CI_KID_SUBSETS = 5


def _stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    feats = np.asarray(feats, dtype=np.float64)
    return feats.mean(axis=0), np.atleast_2d(np.cov(feats, rowvar=False))


def fid(real_feats: np.ndarray, fake_feats: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (n, d) feature sets. A singular product
    (n < d, dead features) gets eps * I added to both covariances, as pytorch-fid does; the
    imaginary round-off scipy's sqrtm leaves is dropped. Clipped at 0 (round-off can dip below)."""
    mu1, s1 = _stats(real_feats)
    mu2, s2 = _stats(fake_feats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # singular products are handled here
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(s1)) * SQRTM_EPS
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    value = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(covmean)))
    return max(value, 0.0)


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def kid(real_feats: np.ndarray, fake_feats: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float, np.ndarray]:
    """(mean, std, per-subset values) of the unbiased polynomial-kernel MMD^2 over `subsets` random
    subsets of min(subset_size, n_real, n_fake) rows drawn without replacement from each side."""
    real_feats, fake_feats = np.asarray(real_feats, float), np.asarray(fake_feats, float)
    size = min(subset_size, len(real_feats), len(fake_feats))
    if size < 2:
        raise ValueError("kid: need at least 2 rows on each side")
    rng = np.random.default_rng(seed)
    values = np.array([
        _mmd2_unbiased(real_feats[rng.choice(len(real_feats), size, replace=False)],
                       fake_feats[rng.choice(len(fake_feats), size, replace=False)])
        for _ in range(subsets)
    ])
    return float(values.mean()), float(values.std(ddof=1) if subsets > 1 else 0.0), values


def fid_kid(real: "SliceSet | np.ndarray", fake: np.ndarray, *, net: FeatureNet | None = None, seed: int = 0,
            subsets: int = 100, subset_size: int = 1000, compared: str = "synthetic vs real",
            fake_subject: np.ndarray | None = None) -> tuple[MetricResult, MetricResult]:
    """FID and KID of generated slices against real ones (usually the holdout), each with a CI from
    the subject-level bootstrap (`fake_subject`: the real subject each generated slice was matched
    to, None when unmatched); a bare array of real slices counts each slice as a subject."""
    net = net or feature_net()
    real_f = extract(as_images(real, "real"), net)
    fake_f = extract(as_images(fake, "fake"), net)
    draws = real_draws(real, len(fake_f), fake_subject=fake_subject, seed=seed, draws=CI_DRAWS)
    size = min(subset_size, len(real_f), len(fake_f))
    fids = [fid(real_f[r], fake_f[f]) for r, f in zip(draws.real, draws.fake)]
    kids = [kid(real_f[r], fake_f[f], CI_KID_SUBSETS, size, seed)[0] for r, f in zip(draws.real, draws.fake)]
    info = {**net.info(), "n_real": len(real_f), "n_fake": len(fake_f), **draws.info()}
    mean, std, _ = kid(real_f, fake_f, subsets, subset_size, seed)
    fid_result = MetricResult("fid", fid(real_f, fake_f), ci=percentile_ci(fids), compared=compared, detail=info)
    kid_result = MetricResult("kid", mean, ci=percentile_ci(kids), compared=compared,
                              detail={**info, "std": std, "subsets": subsets, "subset_size": size, "seed": seed})
    return fid_result, kid_result
