"""Summaries of distance-to-closest-record samples that both arms report: the Wilson interval of a
rate and the shared-edge DCR histogram."""

import math

import numpy as np

HISTOGRAM_BINS = 30
Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (stays inside [0, 1] and sane near 0 and 1)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def wilson_sample_size(width: float, z: float = Z95) -> int:
    """The fewest trials whose 95% Wilson interval is at most `width` wide whatever the proportion:
    the interval is widest at 1/2, where its width is z / sqrt(n + z²)."""
    if not 0.0 < width <= 1.0:
        raise ValueError(f"width={width}: expected 0 < width <= 1")
    return max(1, math.ceil((z / width) ** 2 - z * z))


def newcombe_difference(x1: float, n1: int, x2: float, n2: int) -> tuple[float, float]:
    """95% interval for p1 - p2 (Newcombe 1998, method 10: the hybrid of two Wilson intervals). The
    Wald interval collapses to zero width at 0 of n and under-covers at rates of a few per thousand,
    exactly where copy rates sit; Newcombe's stays valid there and has a closed form."""
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = wilson_interval(x1, n1), wilson_interval(x2, n2)
    return (p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def dcr_quantiles(d: np.ndarray) -> dict[str, float]:
    p5, p50 = np.percentile(d[:, 0], [5, 50])
    return {"p5": float(p5), "p50": float(p50)}


def dcr_histogram(syn: np.ndarray, hold: np.ndarray, bins: int = HISTOGRAM_BINS) -> dict:
    """Counts of synthetic->train and holdout->train DCR on shared bin edges: `bins` equal bins from 0
    to the 99th percentile of both samples pooled (the far tail would squash the informative part);
    distances beyond the last edge are counted in `above_last_edge`, so counts + above = n."""
    pooled = np.concatenate([syn, hold])
    top = float(np.percentile(pooled, 99)) if len(pooled) else 0.0
    if not top > 0:
        top = float(pooled.max()) if len(pooled) and pooled.max() > 0 else 1.0
    edges = np.linspace(0.0, top, bins + 1)
    out: dict = {"edges": edges.tolist(), "range_quantile": 0.99}
    for name, d in (("synthetic_to_train", syn), ("holdout_to_train", hold)):
        out[name] = np.histogram(d, bins=edges)[0].astype(int).tolist()
    out["above_last_edge"] = {"synthetic_to_train": int((syn > top).sum()), "holdout_to_train": int((hold > top).sum())}
    return out
