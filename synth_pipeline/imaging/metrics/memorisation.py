"""Memorisation of training slices, judged like the tabular DCR metrics (metrics/privacy.py).

Two spaces: pixels (Euclidean on the flattened [-1, 1] images: catches copies) and the feature
network's embedding (features.py: catches near-copies that are shifted or re-textured). In each:
  memorisation_<space>  share of generated slices closer to their nearest train slice than the
                        holdout's 5th-percentile nearest-train distance; a fresh real sample scores
                        0.05, a generator that copies train scores up to 1.
  dcr_share_<space>     share of generated slices closer to a train subset than to the holdout, the
                        subset as many whole train subjects as the holdout has, averaged over
                        DCR_DRAWS seeded draws (`train_subsets`); ties count half; 0.5 is ideal.
  exact_copies          generated slices identical to a train slice (pixel distance 0), as a share;
                        detail also counts near-exact copies (pixel RMS difference < NEAR_EXACT_RMS)
                        and the holdout's own exact-copy rate (`holdout_rate`, the gate's allowance).
Both rates carry a 95% CI from a bootstrap over holdout subjects (bootstrap.py): slices of one
volume are not independent, so a slice-level interval would be far too narrow.
Nearest neighbours come from metrics.privacy.nearest: exact, block by block on torch, memory bounded,
an exact copy at distance 0.0. `detail["worst"]` lists the generated slices closest to train with
their nearest train slice, so a report can show the pairs side by side.
"""

import numpy as np

from synth_pipeline.imaging.metrics.bootstrap import SubjectDraws, percentile_ci, real_draws
from synth_pipeline.imaging.metrics.features import FeatureNet, as_images, extract, feature_net
from synth_pipeline.imaging.slices import SliceSet
from synth_pipeline.metrics.base import MetricResult
from synth_pipeline.metrics.distances import dcr_histogram
from synth_pipeline.neighbors import nearest

NEAR_EXACT_RMS = 0.01  # 0.5% of the [-1, 1] range per pixel: visually identical
N_WORST = 8
DCR_DRAWS = 5
COMPARED = "synthetic->train vs holdout->train"
_RERANK_BYTES = 2e8  # bounds nearest()'s float64 re-ranking buffer (~24 * rows * 10 * dim bytes)


def _nearest1(query: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    block = max(1, int(_RERANK_BYTES // (240 * query.shape[1])))
    d, i = nearest(query, reference, k=1, block_rows=block)
    return d[:, 0], i[:, 0]


def _quantiles(d: np.ndarray) -> dict[str, float]:
    return {f"p{q}": float(v) for q, v in zip((0, 5, 25, 50), np.percentile(d, [0, 5, 25, 50]))}


def train_subsets(train: "SliceSet | np.ndarray", holdout: "SliceSet | np.ndarray", seed: int,
                  draws: int = DCR_DRAWS) -> list[np.ndarray]:
    """The train index sets the DCR share compares against, `draws` seeded draws. With subjects on
    both sides: all slices of as many train subjects as the holdout has, so a fresh subject, the
    train subset and the holdout are exchangeable (k whole volumes each; slices of one volume are
    correlated, a slice-level subset would not be); several draws so that every train subject
    counts and one unlucky draw does not decide. Otherwise slice-level subsets of the holdout's size."""
    rng = np.random.default_rng(seed)
    if isinstance(train, SliceSet) and isinstance(holdout, SliceSet):
        subjects = train.subjects()
        k = min(len(holdout.subjects()), len(subjects))
        return [np.nonzero(np.isin(train.subject, rng.choice(subjects, k, replace=False)))[0] for _ in range(draws)]
    size = min(len(holdout), len(train))
    return [np.sort(rng.choice(len(train), size=size, replace=False)) for _ in range(draws)]


def _space(space: str, fake: np.ndarray, train: np.ndarray, hold: np.ndarray, subsets: list[np.ndarray],
           draws: SubjectDraws, seed: int, extra: dict) -> tuple[list[MetricResult], np.ndarray, np.ndarray]:
    d_fake, i_fake = _nearest1(fake, train)
    d_hold, _ = _nearest1(hold, train)
    n = len(d_fake)
    p5 = float(np.percentile(d_hold, 5))
    memorised = int((d_fake < p5).sum())
    worst = np.argsort(d_fake, kind="stable")[:N_WORST]
    memo_draws = [float((d_fake[f] < np.percentile(d_hold[h], 5)).mean()) for h, f in zip(draws.real, draws.fake)]
    memo = MetricResult(
        f"memorisation_{space}", memorised / n, ci=percentile_ci(memo_draws), compared=COMPARED,
        detail={**extra, **draws.info(), "holdout_p5_distance": p5, "holdout_rate": float((d_hold < p5).mean()),
                "n_synthetic": n, "n_memorised": memorised,
                "distance_quantiles": {"synthetic_to_train": _quantiles(d_fake), "holdout_to_train": _quantiles(d_hold)},
                "histogram": dcr_histogram(d_fake, d_hold),
                "worst": [{"synthetic": int(j), "train": int(i_fake[j]), "distance": float(d_fake[j])} for j in worst]},
    )
    d_h, _ = _nearest1(fake, hold)
    d_ts = [_nearest1(fake, train[subset])[0] for subset in subsets]
    closer = float(np.mean([(d_t < d_h).sum() for d_t in d_ts]))
    ties = float(np.mean([(d_t == d_h).sum() for d_t in d_ts]))
    per_draw = [float(((d_t < d_h).sum() + 0.5 * (d_t == d_h).sum()) / n) for d_t in d_ts]
    per_slice = np.mean([(d_t < d_h) + 0.5 * (d_t == d_h) for d_t in d_ts], axis=0)
    share = MetricResult(
        f"dcr_share_{space}", (closer + 0.5 * ties) / n, ci=percentile_ci([per_slice[f].mean() for f in draws.fake]),
        compared="synthetic->train subset vs synthetic->holdout (equal numbers of subjects)",
        detail={**extra, **draws.info(), "n_closer_to_train": closer, "n_ties": ties, "per_draw": per_draw,
                "train_subset_sizes": [len(x) for x in subsets], "holdout_size": len(hold), "seed": seed},
    )
    return [memo, share], d_fake, d_hold


def memorisation_metrics(fake: np.ndarray, train: "SliceSet | np.ndarray", holdout: "SliceSet | np.ndarray", *,
                         net: FeatureNet | None = None, seed: int = 0,
                         fake_subject: np.ndarray | None = None) -> list[MetricResult]:
    """memorisation_pixel, dcr_share_pixel, memorisation_feature, dcr_share_feature, exact_copies.
    `fake_subject`: the holdout subject each synthetic slice was position-matched to (None: unmatched)."""
    fake, train_i, hold_i = as_images(fake, "fake"), as_images(train, "train"), as_images(holdout, "holdout")
    flat = [a.reshape(len(a), -1).astype(np.float64) for a in (fake, train_i, hold_i)]
    subsets = train_subsets(train, holdout, seed)
    draws = real_draws(holdout, len(fake), fake_subject=fake_subject, seed=seed)
    pixel, d_pix, d_pix_hold = _space("pixel", *flat, subsets, draws, seed,
                                      {"space": "pixels in [-1, 1]", "dim": flat[0].shape[1]})
    net = net or feature_net()
    feats = [extract(a, net) for a in (fake, train_i, hold_i)]
    feature, _, _ = _space("feature", *feats, subsets, draws, seed, {"space": "feature network", **net.info()})
    rms = d_pix / np.sqrt(flat[0].shape[1])
    exact, hold_exact = int((d_pix == 0).sum()), int((d_pix_hold == 0).sum())
    copies = MetricResult(
        "exact_copies", exact / len(fake), compared=COMPARED,
        detail={"exact_count": exact, "near_exact_count": int((rms < NEAR_EXACT_RMS).sum()),
                "near_exact_rms": NEAR_EXACT_RMS, "n_synthetic": len(fake),
                "holdout_count": hold_exact, "holdout_rate": hold_exact / len(hold_i)},
    )
    return [*pixel, *feature, copies]
