"""`dp_diffusion`: our tabular diffusion model (generators/diffusion.py) trained with DP-SGD through
Opacus, for an (ε, δ) guarantee with respect to adding or removing one training row.

Budget, by basic composition (ε = ε_pre + ε_sgd, δ = δ/2 + δ/2):
- ε_pre = `preprocess_share` × ε (0.1) at δ/2, as zCDP (dp_budget.cdp_rho), pays for what the
  ordinary model reads from the rows before training: the quantiles of every numeric column (its
  quantile encoding) and the class frequencies of the target (the classes drawn at sampling). Each
  is a Gaussian-noised histogram (σ = sqrt(m / 2ρ) for m histograms) on a grid fixed by the declared
  bounds (mst.bin_edges, `bins` 64), de-noised as MST compresses (mst.denoised_mass; a column whose
  histogram is all noise keeps the grid's own log-uniform map: the encoder only needs to be monotone). Category lists (and
  whether a column may be missing) come from the declared schema or the `bounds` / `categories`
  parameters, as for `mst`; a file's inferred schema is refused until they are declared.
- ε_sgd = the rest at δ/2: Opacus' `make_private_with_epsilon` (Poisson sampling at rate batch_size /
  rows, per-sample gradients clipped to `max_grad_norm`, Gaussian noise; the `accountant`, PRV by
  default) picks the noise multiplier for `epochs` epochs. Every row trains: no validation split, no
  early stopping, no best-epoch pick (all would read rows outside the budget); `dropout` defaults to
  0 (the ordinary model picks it from the row count). The EMA of the weights is post-processing.
  The denoiser (Linear, Embedding, LayerNorm, SiLU, Dropout; no BatchNorm) passes Opacus' validator.
The row count itself is treated as public (it sets Opacus' sampling rate), as Opacus does.

A requested ε whose noise multiplier would exceed `max_noise_multiplier` (or that Opacus cannot reach)
is refused before training, with the reason (GeneratorError: a refusal, exit 3).
"""

import json
import math
from pathlib import Path
import numpy as np
import pandas as pd

from synth_pipeline.data.infer import INFERRED_NOTE
from synth_pipeline.errors import BadInput, GeneratorError
from synth_pipeline.generators.base import register
from synth_pipeline.generators.diffusion import DiffusionGenerator
from synth_pipeline.generators.dp_budget import (DEFAULT_DELTA, DEFAULT_EPSILON, PrivacySpent, cdp_eps, cdp_rho,
                                                 check_budget)
from synth_pipeline.generators.encoding import TableEncoder
from synth_pipeline.generators.mst import denoised_mass, public_domain
from synth_pipeline.nn.training import DPTraining, NoiseTooLarge, write_json
from synth_pipeline.schema import Schema

N_QUANTILES = 1000


@register
class DPDiffusionGenerator(DiffusionGenerator):
    name = "dp_diffusion"
    summary = "our tabular diffusion trained with DP-SGD (Opacus) for an (ε, δ) guarantee; public bounds only"
    near_copy_quantile = 0.0  # a floor read from the training rows is outside ε (README: what the budget does not cover)
    PRIVACY_FILE = "privacy.json"

    def __init__(self, epsilon: float = DEFAULT_EPSILON, delta: float = DEFAULT_DELTA, epochs: int = 100,
                 batch_size: int = 256, lr: float = 2e-3, hidden: int = 128, n_layers: int = 3, dropout: float = 0.0,
                 max_grad_norm: float = 1.0, accountant: str = "prv", preprocess_share: float = 0.1,
                 max_noise_multiplier: float = 10.0, bins: int = 64, sample_steps: int = 100,
                 guidance_scale: float = 1.0, eta: float = 1.0, cond_dropout: float = 0.1, ema_decay: float = 0.999,
                 bounds: dict[str, list[float]] | None = None, categories: dict[str, list[str]] | None = None,
                 patience: None = None, val_fraction: float = 0.0, checkpoint_dir: None = None) -> None:
        check_budget(self.name, epsilon, delta)
        if patience is not None or val_fraction != 0.0 or checkpoint_dir is not None:
            raise BadInput("generator 'dp_diffusion': trains on every row for `epochs` epochs; patience, val_fraction "
                           "and checkpoint_dir would read rows outside the budget or lose its accounting")
        if accountant not in ("prv", "rdp") or not 0 < preprocess_share < 1:
            raise BadInput(f"generator 'dp_diffusion': accountant must be 'prv' or 'rdp' and preprocess_share in "
                           f"(0, 1) (got {accountant!r}, {preprocess_share})")
        super().__init__(epochs=epochs, batch_size=batch_size, lr=lr, hidden=hidden, n_layers=n_layers,
                         dropout=dropout, sample_steps=sample_steps, guidance_scale=guidance_scale, eta=eta,
                         cond_dropout=cond_dropout, patience=None, val_fraction=0.0, ema_decay=ema_decay)
        self.params.update(epsilon=epsilon, delta=delta, max_grad_norm=max_grad_norm, accountant=accountant,
                           preprocess_share=preprocess_share, max_noise_multiplier=max_noise_multiplier, bins=bins,
                           bounds=bounds or {}, categories=categories or {})

    # -- budget -----------------------------------------------------------------------------------
    def _split(self) -> tuple[float, float, float]:
        """(ε_pre, ε_sgd, δ per part)."""
        eps, delta = float(self.params["epsilon"]), float(self.params["delta"])
        return self.params["preprocess_share"] * eps, (1 - self.params["preprocess_share"]) * eps, delta / 2

    def _dp_training(self) -> DPTraining:
        _, eps_sgd, delta = self._split()
        return DPTraining(epsilon=eps_sgd, delta=delta, module="denoiser", optimizer="adamw",
                          max_grad_norm=self.params["max_grad_norm"], accountant=self.params["accountant"],
                          max_noise_multiplier=self.params["max_noise_multiplier"])

    # -- preprocessing inside the budget ------------------------------------------------------------
    def _fit_encoder(self, table: pd.DataFrame, seed: int) -> TableEncoder:
        p = self.params
        eps_pre, _, delta = self._split()
        inferred = self.schema.notes.get("schema") == INFERRED_NOTE
        cols = self._columns()
        specs = [self.schema.column(c) for c in cols]
        domains = {s.name: public_domain(s, inferred=inferred, bounds=p["bounds"], categories=p["categories"],
                                          bins=p["bins"]) for s in self.schema.columns}
        measured = [s.name for s in specs if s.kind != "categorical"] + ([self.target] if self.classes else [])
        rho = cdp_rho(eps_pre, delta)
        sigma = math.sqrt(max(1, len(measured)) / (2 * rho))
        rng = np.random.default_rng([seed, 14])
        mass = {}
        for c in measured:
            dom = domains[c]
            y = np.bincount(dom.index(table[c]), minlength=dom.size) + rng.normal(0, sigma, dom.size)
            mass[c] = denoised_mass(dom, y, sigma)
        info = []
        for s in specs:
            dom = domains[s.name]
            if s.kind == "categorical":
                info.append({"name": s.name, "kind": "categorical", "levels": sorted(dom.categories), "nan": dom.nan})
                continue
            m = mass[s.name][: dom.ordered]
            if m.sum() <= 0:  # all noise: the grid itself (log-uniform) is the map; any monotone map decodes
                m = np.ones(dom.ordered)
            cdf = np.concatenate([[0.0], np.cumsum(m)])
            q = np.interp(np.linspace(0, 1, N_QUANTILES), cdf / cdf[-1], np.asarray(dom.edges))
            info.append({"name": s.name, "kind": "numeric", "nan": dom.nan, "method": "quantile",
                         "quantiles": q.tolist()})
        enc = TableEncoder(numeric="quantile", n_quantiles=N_QUANTILES, seed=seed)
        enc.schema = Schema(self.schema.dataset, self.schema.target, tuple(specs))
        enc.info = info
        self._noisy_classes = mass.get(self.target)
        self._pre = {"rho": rho, "sigma": sigma, "histograms": measured}
        return enc

    def _fit(self, table: pd.DataFrame, seed: int) -> None:
        if self.classes:  # the declared classes, not the ones observed in the rows
            self.classes = sorted(self._target_domain().categories)
        try:
            super()._fit(table, seed)
        except NoiseTooLarge as e:
            raise GeneratorError(
                f"dp_diffusion: cannot meet epsilon={self.params['epsilon']:g} (delta={self.params['delta']:g}) "
                f"usefully: DP-SGD would need {e} at {len(table)} rows; raise epsilon, use more rows or fewer "
                "epochs") from None
        except ValueError as e:
            if "budget" not in str(e).lower():
                raise
            raise GeneratorError(f"dp_diffusion: cannot meet epsilon={self.params['epsilon']:g}: Opacus: {e}") from None
        dp = self.training["dp"]
        if self._noisy_classes is not None:
            dom = self._target_domain()
            labels = list(dom.categories) + ([""] if dom.nan else [])
            self.class_freq = {lab: float(m) for lab, m in zip(labels, self._noisy_classes) if m > 0} \
                or {lab: 1.0 for lab in labels}
        eps_pre, eps_sgd, delta = self._split()
        spent = cdp_eps(self._pre["rho"], delta) + dp["epsilon_spent"]
        self.privacy = PrivacySpent(
            mechanism="DP-SGD (Opacus: Poisson sampling, per-sample clipping, Gaussian noise, "
                      f"{dp['accountant'].upper()} accountant) + Gaussian-noised histograms for the encoder, "
                      "composed additively",
            epsilon=float(self.params["epsilon"]), delta=float(self.params["delta"]), epsilon_spent=spent,
            covers="every read of the training rows by the generator: encoder quantiles, class frequencies, training",
            outside="category lists, bounds and missing-value levels are declared (schema or generator_params); "
                    "the row count is public; the pipeline's small-cell pooling and train/holdout split precede it",
            details={"epsilon_preprocess": eps_pre, "epsilon_sgd_target": eps_sgd, "delta_each": delta,
                     "preprocess": self._pre, "sgd": dp}).to_dict()

    def _target_domain(self):
        inferred = self.schema.notes.get("schema") == INFERRED_NOTE
        return public_domain(self.schema.column(self.target), inferred=inferred, bounds={},
                             categories=self.params["categories"], bins=2)

    def _save_state(self, path: Path) -> list[str]:
        write_json(path / self.PRIVACY_FILE, self.privacy)
        return super()._save_state(path) + [self.PRIVACY_FILE]

    def _load_state(self, path: Path) -> None:
        super()._load_state(path)
        self.privacy = json.loads((path / self.PRIVACY_FILE).read_text())
