"""Visual Turing test kit: can a reader tell generated slices from real ones?

`make_kit` writes a blinded montage (numbered tiles, real and synthetic shuffled together) and a blank
answers.csv into `out_dir`, and the answer key into a SEPARATE `key_dir`, so the montage folder can
be handed to a reader as is. `score` reads the filled-in answers against the key: accuracy,
sensitivity and specificity for detecting synthetic tiles, and a two-sided exact binomial test of the
accuracy against 0.5 (chance). A reader who cannot beat chance is the goal of a generator.
"""

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth_pipeline.errors import BadInput
from synth_pipeline.imaging.metrics.features import as_images

MONTAGE_FILE = "montage.png"
ANSWERS_FILE = "answers.csv"
KEY_FILE = "answer_key.json"
LABELS = ("real", "synthetic")
ALPHA = 0.05


@dataclass(frozen=True)
class TuringKit:
    montage: Path
    answers_template: Path
    key: Path


@dataclass(frozen=True)
class TuringScore:
    """Synthetic is the positive class: sensitivity = synthetic tiles called synthetic, specificity =
    real tiles called real. `unanswered` tiles (blank answers) are left out of n."""

    accuracy: float
    sensitivity: float | None
    specificity: float | None
    n: int
    n_correct: int
    unanswered: int
    p_value: float
    verdict: str


def _draw(images: np.ndarray, n: int, rng: np.random.Generator, what: str) -> np.ndarray:
    if len(images) < n:
        raise BadInput(f"turing kit: {n} {what} slices requested, only {len(images)} given")
    return np.sort(rng.choice(len(images), n, replace=False))


def make_kit(real: np.ndarray, fake: np.ndarray, out_dir: Path, *, n_each: int, seed: int,
             key_dir: Path | None = None, tile_inches: float = 1.6) -> TuringKit:
    """`n_each` real and `n_each` synthetic slices (seeded draw), shuffled into one numbered grid.
    key_dir defaults to a sibling `<out_dir>_key`; it may not lie inside out_dir."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real, fake = as_images(real, "real"), as_images(fake, "fake")
    if n_each < 1:
        raise BadInput(f"turing kit: n_each must be >= 1, got {n_each}")
    out_dir = Path(out_dir)
    key_dir = Path(key_dir) if key_dir is not None else out_dir.with_name(out_dir.name + "_key")
    if key_dir.resolve() == out_dir.resolve() or out_dir.resolve() in key_dir.resolve().parents:
        raise BadInput(f"turing kit: key folder {key_dir} must lie outside the montage folder {out_dir}")
    rng = np.random.default_rng(seed)
    picks = {"real": _draw(real, n_each, rng, "real"), "synthetic": _draw(fake, n_each, rng, "synthetic")}
    tiles = [(label, int(i)) for label in LABELS for i in picks[label]]
    order = rng.permutation(len(tiles))
    tiles = [tiles[j] for j in order]

    cols = int(np.ceil(np.sqrt(len(tiles))))
    rows = int(np.ceil(len(tiles) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * tile_inches, rows * tile_inches), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < len(tiles):
            label, i = tiles[k]
            ax.imshow((real if label == "real" else fake)[i, 0], cmap="gray", vmin=-1, vmax=1,
                      interpolation="nearest")
            ax.set_title(str(k + 1), fontsize=9)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    key_dir.mkdir(parents=True, exist_ok=True)
    montage = out_dir / MONTAGE_FILE
    fig.savefig(montage, dpi=100)
    plt.close(fig)

    answers = out_dir / ANSWERS_FILE
    with open(answers, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["tile", "answer"])
        w.writerows([[k + 1, ""] for k in range(len(tiles))])
    key = key_dir / KEY_FILE
    key.write_text(json.dumps({
        "tiles": {str(k + 1): label for k, (label, _) in enumerate(tiles)},
        "source_index": {str(k + 1): i for k, (_, i) in enumerate(tiles)},
        "n_each": n_each, "seed": seed, "answers": "real | synthetic",
    }, indent=1))
    return TuringKit(montage, answers, key)


def _read_key(path: Path) -> dict[str, str]:
    try:
        tiles = json.loads(Path(path).read_text())["tiles"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadInput(f"{path}: not a Turing-test answer key ({type(e).__name__})") from None
    if not isinstance(tiles, dict) or set(tiles.values()) - set(LABELS):
        raise BadInput(f"{path}: answer key tiles must map tile numbers to real/synthetic")
    return tiles


def _read_answers(path: Path, key: dict[str, str]) -> dict[str, str | None]:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
            fields = set(rows[0].keys()) if rows else set()
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise BadInput(f"{path}: cannot read answers ({type(e).__name__})") from None
    if not rows or not {"tile", "answer"} <= fields:
        raise BadInput(f"{path}: answers file needs a header 'tile,answer' and one row per tile")
    out: dict[str, str | None] = {}
    for line, row in enumerate(rows, start=2):
        tile = (row["tile"] or "").strip()
        answer = (row["answer"] or "").strip().lower()
        if tile not in key:
            raise BadInput(f"{path}: line {line}: tile '{tile}' is not in the answer key")
        if tile in out:
            raise BadInput(f"{path}: line {line}: tile {tile} answered twice")
        if answer and answer not in LABELS:
            raise BadInput(f"{path}: line {line}: answer '{row['answer']}' must be 'real' or 'synthetic'")
        out[tile] = answer or None
    return out


def score(answers_csv: Path, key_json: Path) -> TuringScore:
    from scipy.stats import binomtest

    key = _read_key(key_json)
    answers = _read_answers(answers_csv, key)
    given = {t: a for t, a in answers.items() if a is not None}
    if not given:
        raise BadInput(f"{answers_csv}: no tile has an answer")
    truth = np.array([key[t] == "synthetic" for t in given])
    said = np.array([a == "synthetic" for a in given.values()])
    correct = int((truth == said).sum())
    n = len(given)
    sens = float(said[truth].mean()) if truth.any() else None
    spec = float((~said[~truth]).mean()) if (~truth).any() else None
    p = float(binomtest(correct, n, 0.5).pvalue)
    acc = correct / n
    if p < ALPHA and acc > 0.5:
        verdict = f"readers told synthetic from real better than chance (accuracy {acc:.2f}, p={p:.3g}, n={n})"
    elif p < ALPHA:
        verdict = f"readers systematically mislabelled the tiles (accuracy {acc:.2f}, p={p:.3g}, n={n})"
    else:
        verdict = f"readers could not tell synthetic from real (accuracy {acc:.2f}, p={p:.3g}, n={n})"
    return TuringScore(acc, sens, spec, n, correct, len(key) - n, p, verdict)
