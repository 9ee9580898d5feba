"""Conditioning check: does a slice generated for position p look like a real slice at p?

A regressor learns position from real TRAIN slices only; its MAE on generated slices against the
positions they were requested at is the metric (lower is better). Two anchors in `detail` make the
number readable: the floor, the same regressor's MAE on real holdout slices (what a perfectly
conditioned generator would reach), and the ceiling, the MAE of always predicting the train mean
position (what ignoring the position gives; an unconditional model lands near or above it).

Regressors: "cnn" (default), a small seeded CNN trained with the shared torch loop (L1 loss, early
stopping on a validation split); "ridge", ridge regression on 16x16 average-pooled pixels, kept as
the fast baseline. The CNN is the default because slice anatomy depends on position non-linearly.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from synth_pipeline.errors import BadInput
from synth_pipeline.nn.training import num_threads, train
from synth_pipeline.generators.base import seed_everything
from synth_pipeline.imaging.metrics.features import as_images, resize
from synth_pipeline.imaging.metrics.similarity import bootstrap_mean_ci
from synth_pipeline.imaging.slices import SliceSet
from synth_pipeline.metrics.base import MetricResult

CNN_SIZE = 32
RIDGE_SIZE = 16
REGRESSORS = ("cnn", "ridge")


def _cnn() -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(1, 16), *block(16, 32), *block(32, 64), nn.Flatten(),
                         nn.Linear(64 * (CNN_SIZE // 8) ** 2, 64), nn.ReLU(), nn.Linear(64, 1), nn.Sigmoid())


def _resized(images: np.ndarray, size: int) -> torch.Tensor:
    with torch.no_grad():
        return resize(torch.from_numpy(images), size)


@dataclass(frozen=True)
class PositionRegressor:
    """A fitted image -> position model; `predict` returns positions in [0, 1]."""

    kind: str
    model: object
    epochs_run: int | None = None

    def predict(self, images: np.ndarray) -> np.ndarray:
        images = as_images(images)
        if self.kind == "ridge":
            x = _resized(images, RIDGE_SIZE).reshape(len(images), -1).numpy()
            return np.clip(self.model.predict(x), 0.0, 1.0)
        with torch.no_grad(), num_threads(1):
            self.model.eval()
            x = _resized(images, CNN_SIZE)
            return np.concatenate([self.model(x[lo : lo + 512]).double().numpy().ravel()
                                   for lo in range(0, len(x), 512)])


def fit_position_regressor(train_set: SliceSet, *, kind: str = "cnn", seed: int = 0, epochs: int = 60,
                           batch_size: int = 64, patience: int = 12) -> PositionRegressor:
    """Fit on real train slices (seeded: the same seed gives the same model)."""
    if kind not in REGRESSORS:
        raise BadInput(f"conditioning: unknown regressor '{kind}'; choose one of: {', '.join(REGRESSORS)}")
    y = train_set.position.astype(np.float32)
    if kind == "ridge":
        from sklearn.linear_model import RidgeCV

        x = _resized(train_set.images, RIDGE_SIZE).reshape(len(train_set), -1).numpy()
        return PositionRegressor("ridge", RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(x, y))
    seed_everything(seed)
    net = _cnn()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)

    def step(x: torch.Tensor, t: torch.Tensor) -> dict[str, float]:
        opt.zero_grad()
        loss = (net(x).squeeze(1) - t).abs().mean()
        loss.backward()
        opt.step()
        return {"l1": loss.item()}

    def val_loss(x: torch.Tensor, t: torch.Tensor) -> float:
        return float((net(x).squeeze(1) - t).abs().mean())

    result = train({"net": net}, {"net": opt}, step, (_resized(train_set.images, CNN_SIZE).numpy(), y),
                   epochs=epochs, batch_size=batch_size, seed=seed, val_loss=val_loss, patience=patience,
                   desc="position regressor")
    return PositionRegressor("cnn", net, result.epochs_run)


def conditioning_mae(fake: np.ndarray, positions: np.ndarray, train_set: SliceSet, holdout: SliceSet, *,
                     kind: str = "cnn", seed: int = 0, regressor: PositionRegressor | None = None) -> MetricResult:
    """`conditioning_mae`: the train-fitted regressor's MAE on generated slices vs their requested
    positions, with a bootstrap CI; detail holds the holdout floor and the predict-the-mean ceiling."""
    fake = as_images(fake, "fake")
    positions = np.asarray(positions, dtype=float)
    if len(positions) != len(fake):
        raise BadInput(f"conditioning: {len(positions)} positions for {len(fake)} images")
    reg = regressor or fit_position_regressor(train_set, kind=kind, seed=seed)
    err = np.abs(reg.predict(fake) - positions)
    floor = float(np.abs(reg.predict(holdout.images) - holdout.position).mean())
    mean_pos = float(train_set.position.mean())
    return MetricResult(
        "conditioning_mae", float(err.mean()), ci=bootstrap_mean_ci(err, seed),
        compared="regressor(synthetic) vs requested position",
        detail={"regressor": reg.kind, "floor_holdout_mae": floor,
                "ceiling_mean_mae": float(np.abs(positions - mean_pos).mean()),
                "ceiling_holdout_mae": float(np.abs(holdout.position - mean_pos).mean()),
                "n_fake": len(fake), "n_train": len(train_set), "seed": seed},
    )
