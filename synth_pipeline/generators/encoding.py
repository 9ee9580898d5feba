"""Table encoding and network helpers for the tabular arm's own torch models (cwgan_gp, diffusion);
the training loop and checkpoints they share with the MRI arm are in synth_pipeline/nn/training.py.

`TableEncoder` — a conformed frame <-> a float32 matrix, and back.

    enc = TableEncoder(numeric="gmm", seed=0).fit(table, schema, columns=None)   # None: every column
    x = enc.transform(table)            # np.ndarray float32, shape (n, enc.dim)
    df = enc.inverse(x, rng)            # DataFrame of enc.columns, conform()ed; rng=None: argmax
    enc.spans                           # [(start, end, kind)], kind in {"tanh", "linear", "softmax"}
    enc.span_columns                    # the column each span belongs to (parallel to spans)
    d = enc.to_json(); TableEncoder.from_json(d)   # plain JSON types only (lists, floats, str)

  Layout per column, in column order:
  - numeric, numeric="gmm" (mode-specific normalisation as in CTGAN): a Bayesian Gaussian mixture
    (<= max_modes components, Dirichlet-process prior, components with weight < weight_threshold
    dropped, seeded) gives each value its most probable mode k; the row holds ("tanh", 1 wide) the
    value normalised within that mode, (x - mean_k) / (4 std_k), then ("softmax", K wide) the one-hot
    of k. The value is not clipped (CTGAN clips to +-0.99), so the round trip is exact; it leaves
    [-1, 1] only for outliers beyond 4 std of their most probable mode (a tanh output cannot reach
    them; models may clip the encoded value themselves).
  - numeric, numeric="quantile": ("linear", 1 wide) the value mapped through its empirical CDF
    (<= n_quantiles stored quantiles) to a standard normal score, clipped to +-5.
  - numeric with NaN in the fitted data: one more ("softmax", 2 wide) block, [present, missing];
    a missing value's value slot is 0 (gmm: mode = the heaviest one).
  - categorical: ("softmax", L wide) one-hot of the level seen in fit (sorted); NaN is its own
    last level when the fitted data had NaN. An unseen level transforms to all zeros.
  `inverse` reads softmax blocks by argmax, or samples them with `rng` treating the block as
  (unnormalised, non-negative) probabilities — pass softmax outputs, not logits.

`activate(raw, spans, tau=...)` — the per-span output activations a generator network needs
(tanh / identity / softmax, or Gumbel-softmax when `tau` is given), and `hard_sample` to turn
softmax blocks into sampled one-hots. `mmd_rbf(x, y)` is a small kernel two-sample distance that
works as a critic-free validation loss.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict
from typing import Any, Sequence

import numpy as np
import pandas as pd

from synth_pipeline.schema import ColumnSpec, Schema, conform

Span = tuple[int, int, str]

# ================================================================================================
# TableEncoder
# ================================================================================================

_CLIP_Z = 5.0


class TableEncoder:
    """Reversible float encoding of a conformed table; see the module docstring for the layout."""

    VERSION = 1

    def __init__(
        self,
        numeric: str = "gmm",
        *,
        max_modes: int = 10,
        weight_threshold: float = 0.005,
        n_quantiles: int = 1000,
        seed: int = 0,
    ) -> None:
        if numeric not in ("gmm", "quantile"):
            raise ValueError(f"TableEncoder: numeric must be 'gmm' or 'quantile', not {numeric!r}")
        self.numeric = numeric
        self.max_modes = int(max_modes)
        self.weight_threshold = float(weight_threshold)
        self.n_quantiles = int(n_quantiles)
        self.seed = int(seed)
        self.info: list[dict[str, Any]] = []  # one JSON-able dict per column
        self.schema: Schema | None = None  # the schema restricted to the encoded columns

    # ---- fitting ------------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame, schema: Schema, columns: Sequence[str] | None = None) -> "TableEncoder":
        names = list(schema.names if columns is None else columns)
        self.schema = Schema(schema.dataset, schema.target, tuple(schema.column(c) for c in names))
        df = conform(df, self.schema)
        self.info = []
        for spec in self.schema.columns:
            s = df[spec.name]
            if spec.kind == "categorical":
                levels = sorted(str(v) for v in s.dropna().unique())
                self.info.append({"name": spec.name, "kind": "categorical", "levels": levels,
                                  "nan": bool(s.isna().any())})
                continue
            values = s.to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            entry: dict[str, Any] = {"name": spec.name, "kind": "numeric",
                                     "nan": bool(len(finite) < len(values))}
            if len(finite) == 0:
                entry["method"] = "none"  # all missing: only the missing block (always "missing")
                entry["nan"] = True
            elif self.numeric == "gmm":
                entry.update(method="gmm", **self._fit_gmm(finite))
            else:
                entry.update(method="quantile", **self._fit_quantiles(finite))
            self.info.append(entry)
        return self

    def _fit_gmm(self, x: np.ndarray) -> dict[str, list[float]]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import BayesianGaussianMixture

        n_unique = len(np.unique(x))
        k = max(1, min(self.max_modes, n_unique, len(x)))
        if n_unique == 1:
            return {"means": [float(x[0])], "stds": [1.0], "weights": [1.0]}
        gmm = BayesianGaussianMixture(
            n_components=k,
            weight_concentration_prior_type="dirichlet_process",
            weight_concentration_prior=0.001,
            n_init=1,
            max_iter=100,
            random_state=self.seed,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gmm.fit(x.reshape(-1, 1))
        keep = gmm.weights_ > self.weight_threshold
        if not keep.any():
            keep = gmm.weights_ == gmm.weights_.max()
        means = gmm.means_.ravel()[keep]
        stds = np.sqrt(gmm.covariances_.ravel()[keep])
        weights = gmm.weights_[keep] / gmm.weights_[keep].sum()
        floor = max(1e-6, 1e-6 * float(np.std(x)))
        return {"means": means.tolist(), "stds": np.maximum(stds, floor).tolist(), "weights": weights.tolist()}

    def _fit_quantiles(self, x: np.ndarray) -> dict[str, list[float]]:
        nq = max(2, min(self.n_quantiles, len(x)))
        refs = np.linspace(0.0, 1.0, nq)
        return {"quantiles": np.quantile(x, refs).tolist()}

    # ---- layout -------------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        return [c["name"] for c in self.info]

    def _blocks(self) -> list[tuple[str, str, int, str]]:
        """(column, role, width, kind) in encoded order; role in value/modes/missing/levels."""
        out = []
        for c in self.info:
            if c["kind"] == "categorical":
                out.append((c["name"], "levels", len(c["levels"]) + int(c["nan"]), "softmax"))
                continue
            if c["method"] == "gmm":
                out.append((c["name"], "value", 1, "tanh"))
                out.append((c["name"], "modes", len(c["means"]), "softmax"))
            elif c["method"] == "quantile":
                out.append((c["name"], "value", 1, "linear"))
            if c["nan"]:
                out.append((c["name"], "missing", 2, "softmax"))
        return out

    @property
    def spans(self) -> list[Span]:
        spans, start = [], 0
        for _, _, width, kind in self._blocks():
            spans.append((start, start + width, kind))
            start += width
        return spans

    @property
    def span_columns(self) -> list[str]:
        return [b[0] for b in self._blocks()]

    @property
    def dim(self) -> int:
        return sum(b[2] for b in self._blocks())

    # ---- transform ----------------------------------------------------------------------------
    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """Encode the rows of `df` (any column order; extra columns ignored) as float32 (n, dim)."""
        df = conform(df, self.schema)
        parts: list[np.ndarray] = []
        n = len(df)
        for c in self.info:
            s = df[c["name"]]
            if c["kind"] == "categorical":
                levels = c["levels"] + ([None] if c["nan"] else [])
                index = {v: i for i, v in enumerate(c["levels"])}
                block = np.zeros((n, len(levels)), dtype=np.float32)
                for row, v in enumerate(s.to_numpy(dtype=object)):
                    if pd.isna(v):
                        if c["nan"]:
                            block[row, len(c["levels"])] = 1.0
                    elif v in index:
                        block[row, index[v]] = 1.0
                parts.append(block)
                continue
            x = s.to_numpy(dtype=float)
            missing = ~np.isfinite(x)
            if c["method"] == "gmm":
                means, stds, weights = (np.asarray(c[k]) for k in ("means", "stds", "weights"))
                xf = np.where(missing, means[np.argmax(weights)], x)[:, None]
                logp = np.log(weights) - np.log(stds) - 0.5 * ((xf - means) / stds) ** 2
                mode = np.argmax(logp, axis=1)
                value = (xf[:, 0] - means[mode]) / (4 * stds[mode])
                value[missing] = 0.0
                onehot = np.zeros((n, len(means)), dtype=np.float32)
                onehot[np.arange(n), mode] = 1.0
                parts += [value[:, None].astype(np.float32), onehot]
            elif c["method"] == "quantile":
                z = self._to_normal(np.where(missing, np.nan, x), np.asarray(c["quantiles"]))
                z[missing] = 0.0
                parts.append(z[:, None].astype(np.float32))
            if c["nan"]:
                parts.append(np.stack([~missing, missing], axis=1).astype(np.float32))
        if not parts:
            return np.zeros((n, 0), dtype=np.float32)
        return np.concatenate(parts, axis=1).astype(np.float32)

    @staticmethod
    def _to_normal(x: np.ndarray, q: np.ndarray) -> np.ndarray:
        from scipy.stats import norm

        refs = np.linspace(0.0, 1.0, len(q))
        # average of the forward and backward interpolation, as sklearn's QuantileTransformer, so
        # a value repeated over many quantiles (ties) maps to the middle of its CDF step
        u = 0.5 * (np.interp(x, q, refs) - np.interp(-x, -q[::-1], -refs[::-1]))
        return np.clip(norm.ppf(np.clip(u, 1e-7, 1 - 1e-7)), -_CLIP_Z, _CLIP_Z)

    @staticmethod
    def _from_normal(z: np.ndarray, q: np.ndarray) -> np.ndarray:
        from scipy.stats import norm

        return np.interp(norm.cdf(z), np.linspace(0.0, 1.0, len(q)), q)

    # ---- inverse ------------------------------------------------------------------------------
    def inverse(self, x: np.ndarray, rng: np.random.Generator | None = None) -> pd.DataFrame:
        """Decode (n, dim) rows to a conformed frame of `self.columns`. Softmax blocks: argmax when
        `rng` is None, else one category sampled per row from the block's values as probabilities."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"TableEncoder.inverse: expected shape (n, {self.dim}), got {x.shape}")
        n = len(x)
        blocks = iter(self.spans)
        out: dict[str, Any] = {}

        def pick() -> np.ndarray:
            start, end, _ = next(blocks)
            return _choose(x[:, start:end], rng)

        def scalar() -> np.ndarray:
            start, _, _ = next(blocks)
            return x[:, start]

        for c in self.info:
            if c["kind"] == "categorical":
                levels = np.array(c["levels"] + ([np.nan] if c["nan"] else []), dtype=object)
                out[c["name"]] = levels[pick()] if len(levels) else np.full(n, np.nan, dtype=object)
                continue
            if c["method"] == "gmm":
                v = scalar()
                mode = pick()
                means, stds = np.asarray(c["means"]), np.asarray(c["stds"])
                values = v * 4 * stds[mode] + means[mode]
            elif c["method"] == "quantile":
                values = self._from_normal(scalar(), np.asarray(c["quantiles"]))
            else:
                values = np.full(n, np.nan)
            if c["nan"]:
                values = np.where(pick() == 1, np.nan, values)
            out[c["name"]] = values
        return conform(pd.DataFrame(out, index=range(n)), self.schema)

    # ---- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Plain JSON types only: `json.dumps(enc.to_json())` works, no pickle involved."""
        if self.schema is None:
            raise ValueError("TableEncoder.to_json: not fitted")
        return {
            "version": self.VERSION,
            "numeric": self.numeric,
            "max_modes": self.max_modes,
            "weight_threshold": self.weight_threshold,
            "n_quantiles": self.n_quantiles,
            "seed": self.seed,
            "dataset": self.schema.dataset,
            "target": self.schema.target,
            "schema_columns": [
                {**asdict(s), "categories": list(s.categories) if s.categories else None}
                for s in self.schema.columns
            ],
            "columns": self.info,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TableEncoder":
        if d.get("version") != cls.VERSION:
            raise ValueError(f"TableEncoder.from_json: unsupported version {d.get('version')!r}")
        enc = cls(d["numeric"], max_modes=d["max_modes"], weight_threshold=d["weight_threshold"],
                  n_quantiles=d["n_quantiles"], seed=d["seed"])
        specs = tuple(
            ColumnSpec(**{**s, "categories": tuple(s["categories"]) if s.get("categories") else None})
            for s in d["schema_columns"]
        )
        enc.schema = Schema(d["dataset"], d["target"], specs)
        enc.info = json.loads(json.dumps(d["columns"]))  # a deep copy of plain types
        return enc


def _choose(block: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """Index per row: argmax, or sampled from the row's non-negative weights (uniform if all 0)."""
    if block.shape[1] == 1:
        return np.zeros(len(block), dtype=int)
    if rng is None:
        return np.argmax(block, axis=1)
    p = np.clip(np.nan_to_num(block, nan=0.0), 0.0, None)
    total = p.sum(axis=1, keepdims=True)
    p = np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / block.shape[1])
    cdf = np.cumsum(p, axis=1)
    u = rng.random((len(block), 1)) * cdf[:, -1:]
    return np.minimum((u >= cdf).sum(axis=1), block.shape[1] - 1)


# ================================================================================================
# Network helpers
# ================================================================================================


def activate(raw, spans: Sequence[Span], *, tau: float | None = None):
    """Per-span output activation of a generator network's raw output (a torch tensor):
    tanh for "tanh", identity for "linear", softmax for "softmax" (Gumbel-softmax at temperature
    `tau` when given — the differentiable sampling used while training a GAN)."""
    import torch
    import torch.nn.functional as F

    parts = []
    for start, end, kind in spans:
        h = raw[:, start:end]
        if kind == "tanh":
            parts.append(torch.tanh(h))
        elif kind == "linear":
            parts.append(h)
        elif tau is not None:
            parts.append(F.gumbel_softmax(h, tau=tau, hard=False))
        else:
            parts.append(torch.softmax(h, dim=1))
    return torch.cat(parts, dim=1) if parts else raw


def hard_sample(x, spans: Sequence[Span], generator=None):
    """Replace every softmax block of `x` (probabilities) by a one-hot sampled from it (seeded by the
    optional torch.Generator); other spans unchanged."""
    import torch

    out = x.clone()
    for start, end, kind in spans:
        if kind != "softmax":
            continue
        p = x[:, start:end].clamp_min(0) + 1e-12
        idx = torch.multinomial(p.cpu(), 1, generator=generator).to(x.device)
        out[:, start:end] = 0
        out[:, start:end].scatter_(1, idx, 1.0)
    return out


def mmd_rbf(x, y, scales: Sequence[float] = (0.5, 1.0, 2.0, 4.0)) -> float:
    """Squared maximum mean discrepancy (biased estimate) with a sum of RBF kernels whose bandwidths
    are `scales` × sqrt(dim); 0 for identical samples, larger the further apart. Torch tensors in."""
    import torch

    d = max(1, x.shape[1])
    xy = torch.cat([x, y]).double()
    d2 = torch.cdist(xy, xy).pow(2)
    k = sum(torch.exp(-d2 / (2 * (s * math.sqrt(d)) ** 2)) for s in scales)
    n = len(x)
    return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())
