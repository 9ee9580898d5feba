"""Confidence intervals that respect subjects: slices of one volume are not independent.

A slice-level interval (Wilson on n slices, or resampling slices) treats 40 slices of one subject
as 40 observations and is far too narrow when the holdout has four subjects. Here each bootstrap
draw resamples the holdout's *subjects* with replacement and takes all their slices; a synthetic
slice generated at a holdout slice's position (the pipeline's position-matched sampling) goes with
that slice's subject, other synthetic slices are resampled on their own (they are independent
draws of the model). A metric is recomputed on every draw from per-slice quantities already
computed (distances, features), so the bootstrap costs no extra neighbour search or network pass.
The interval is the 2.5-97.5 percentile range of the draws.
"""

from dataclasses import dataclass

import numpy as np

from synth_pipeline.imaging.slices import SliceSet

CI_LEVEL = 0.95
N_DRAWS = 200


@dataclass(frozen=True)
class SubjectDraws:
    """Row indices of each draw: `real[b]` into the holdout slices, `fake[b]` into the synthetic ones."""

    real: tuple[np.ndarray, ...]
    fake: tuple[np.ndarray, ...]
    n_subjects: int
    paired: bool

    def info(self) -> dict:
        how = "with their position-matched synthetic slices" if self.paired else "synthetic slices resampled apart"
        return {"ci": f"{CI_LEVEL:.0%} percentile bootstrap over {self.n_subjects} holdout subjects ({how})",
                "draws": len(self.real), "holdout_subjects": self.n_subjects}


def subject_draws(subjects: np.ndarray, n_fake: int, *, fake_subject: np.ndarray | None, seed: int,
                  draws: int = N_DRAWS) -> SubjectDraws:
    """`subjects` (n_real,): each holdout slice's subject; `fake_subject` (n_fake,): the holdout subject
    each synthetic slice was matched to, or None when the synthetic slices are not matched."""
    subjects = np.asarray(subjects)
    names = np.array(sorted(set(subjects.tolist())))
    rows = {s: np.nonzero(subjects == s)[0] for s in names}
    fake_rows = None if fake_subject is None else {s: np.nonzero(np.asarray(fake_subject) == s)[0] for s in names}
    rng = np.random.default_rng(seed)
    real, fake = [], []
    for _ in range(draws):
        chosen = rng.choice(names, size=len(names), replace=True)
        real.append(np.concatenate([rows[s] for s in chosen]))
        fake.append(np.concatenate([fake_rows[s] for s in chosen]) if fake_rows is not None
                    else rng.integers(0, n_fake, n_fake))
    return SubjectDraws(tuple(real), tuple(fake), len(names), fake_rows is not None)


def real_draws(real: "SliceSet | np.ndarray", n_fake: int, *, fake_subject: np.ndarray | None, seed: int,
               draws: int = N_DRAWS) -> SubjectDraws:
    """Draws over the subjects of a SliceSet; a bare array of real slices counts each slice as a subject."""
    subjects = real.subject if isinstance(real, SliceSet) else np.arange(len(real)).astype(str)
    return subject_draws(subjects, n_fake, fake_subject=fake_subject, seed=seed, draws=draws)


def percentile_ci(values) -> tuple[float, float]:
    """The central CI_LEVEL range of bootstrap estimates."""
    tail = 100 * (1 - CI_LEVEL) / 2
    lo, hi = np.percentile(np.asarray(values, dtype=float), [tail, 100 - tail])
    return float(lo), float(hi)
