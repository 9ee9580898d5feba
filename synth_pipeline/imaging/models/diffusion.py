"""Guided diffusion over axial slices, conditioned on the slice's position (MONAI UNet + DDPM/DDIM).

Model
- Denoiser: `monai.networks.nets.DiffusionModelUNet` (2D, MSE loss) trained on `DDPMScheduler`'s
  forward process (T = 1000, `schedule` linear betas), sampled with `DDIMScheduler` in `ddim_steps`
  deterministic steps (eta = 0; 10 at the tiny and default budgets, 50 at the unmeasured full one; why
  10 at default: benchmarks/MRI.md, "Fewer sampling steps"), so a sample depends only on its initial
  noise. It predicts the velocity v = sqrt(a) eps - sqrt(1 - a) x0 (`prediction` "v_prediction";
  "epsilon" and "sample" are there for comparison): with a few hundred CPU steps, epsilon prediction left speckle noise in the
  background that the low-t steps never removed, v-prediction does not (see Measured).
- Condition: the continuous position p in [0, 1] goes through Fourier features (p and sin/cos of
  2^k pi p, k < 8) and an MLP into `context_tokens` (4) tokens of width `cross_attention_dim`, read by
  the UNet's cross-attention blocks (`context`). Not `class_labels`: binning would throw away the
  ordering and smoothness of p, which neighbouring slices of a volume rely on. Several tokens rather
  than one, because cross-attention over a single token is the same vector at every pixel (a plain
  per-channel shift); with a few tokens each pixel can weigh them differently.
- Classifier-free guidance: in training the context is replaced, with probability `cond_dropout`
  (0.15), by a learned null context; sampling combines out = out_null + w (out_cond - out_null) with
  w = `guidance_scale` (1.0): w = 1 is the plain conditional model (one pass), w = 0 unconditional.
  w > 1 sharpens the condition only once the model is good enough; at the CPU budgets it amplified
  the errors of the conditional branch (w = 2: worse FID and a worse conditioning error, below).
- EMA of the weights (`ema_decay`, 0.995, warmed up as (1+n)/(10+n)) is what is sampled from and what
  the validation loss scores: over the few hundred to few thousand steps of these budgets it smooths
  the last steps' noise out, while 0.999 would still be dominated by the early, poor weights.
Training: the shared `nn.training.train` loop (seeded batches, early stopping on the denoising loss of 10%
held-out slices at fixed seeded timesteps and noise, checkpoints + resume when `checkpoint_dir` is
given). Deterministic on CPU: same seed and slices -> same weights; `sample` draws only from a local
generator seeded by its `seed`. `sample(..., shared_noise=True)` starts every slice from one noise
image (see assemble.py: neighbouring slices of one volume then stay coherent).

Budgets: "tiny" (tests: seconds at 16x16), "default" ((32, 64, 64), cross-attention at the 8x8 level only:
attention at 16x16 too costs 1.6x per step on CPU; 1.43 M parameters, 30 epochs), "full" (bigger,
meant for CUDA; 10.1 M parameters, checked only to build and run at 64x64). The UNet's attention blocks need `einops` (a MONAI optional dependency).

Measured (benchmarks/mri.py, default budget, seed 0, 12 pseudo-cohort subjects, 32x32, 1 torch
thread on a shared 2-core CPU; FID on this project's feature net, conditioning error = position MAE):
| prediction, guidance, other         | FID   | cond. MAE | fit s |
| epsilon, w = 2 (former default)     | 4.22  | 0.198     | 271   |
| epsilon, w = 1, 100 epochs          | 0.886 | 0.079     | 938   |
| v, w = 2                            | 0.957 | 0.186     | 341   |
| v, w = 2, cosine schedule           | 1.084 | 0.173     | 382   |
| v, w = 2, batch 8                   | 0.902 | 0.186     | 465   |
| v, w = 1 (default)                  | 0.158 | 0.064     | 384   |
| v, w = 1, 60 epochs, no early stop  | 0.105 | 0.038     | 1323  |
| v, w = 1, 120 epochs (continued)    | 0.064 | 0.030     | 2421  |
| v, w = 1, 240 epochs (best: 170)    | 0.058 | 0.024     | 4014  |
(every row sampled with 50 DDIM steps, the former default; the last three: one continued run,
`benchmarks/mri.py --curve`, cumulative fit time; each row's time was taken under a different load,
so times are indicative only)
The held-out loss flattens after ~120 epochs (0.0462 / 0.0396 / 0.0352 / 0.0350 at 30 / 60 / 120 /
170): at this width the model has converged, above the GANs' FID; the `full` budget is the next step.
For scale: the GANs score 0.012-0.045 at their default budget, a fresh real subject 0.011, Colin27 0.27.
On the tiny disc task (tests) epsilon prediction follows the position only with guidance (Spearman
0.69 / 0.80 at w = 2 vs 0.35 / 0.52 at w = 1); v-prediction follows it at w = 1.
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from synth_pipeline.nn.training import num_threads, train
from synth_pipeline.generators.base import seed_everything
from synth_pipeline.generators.diffusion import _EMA
from synth_pipeline.imaging.models._gan_nets import fourier_features
from synth_pipeline.imaging.models.base import ImageGenerator, register
from synth_pipeline.imaging.slices import SliceSet

T_TRAIN = 1000
N_FREQ = 8
VAL_DRAWS = 4
SAMPLE_CHUNK = 256

BUDGETS: dict[str, dict[str, Any]] = {
    "tiny": {"channels": [16, 32], "attention_levels": [False, True], "num_res_blocks": 1,
             "norm_num_groups": 8, "cross_attention_dim": 32, "epochs": 3, "batch_size": 16,
             "lr": 2e-3, "ddim_steps": 10, "patience": None},
    "default": {"channels": [32, 64, 64], "attention_levels": [False, False, True], "num_res_blocks": 1,
                "norm_num_groups": 16, "cross_attention_dim": 64, "epochs": 30, "batch_size": 32,
                "lr": 1e-3, "ddim_steps": 10, "patience": 10},
    "full": {"channels": [64, 128, 128], "attention_levels": [False, True, True], "num_res_blocks": 2,
             "norm_num_groups": 32, "cross_attention_dim": 128, "epochs": 400, "batch_size": 64,
             "lr": 5e-4, "ddim_steps": 50, "patience": 30},
}
COMMON = {"guidance_scale": 1.0, "cond_dropout": 0.15, "ema_decay": 0.995, "context_tokens": 4,
          "val_fraction": 0.1, "checkpoint_dir": None, "prediction": "v_prediction", "schedule": "linear_beta"}
PREDICTIONS = ("epsilon", "v_prediction", "sample")
NOT_IN_CONFIG = ("epochs", "guidance_scale", "ddim_steps", "checkpoint_dir")


def position_features(p: torch.Tensor) -> torch.Tensor:
    """(n,) positions in [0, 1] -> (n, 1 + 2 N_FREQ): p itself, then the GANs' Fourier features."""
    p = p.float()
    return torch.cat([p[:, None], fourier_features(p, N_FREQ)], dim=1)


class PositionalDenoiser(nn.Module):
    """The UNet plus the position embedding and the learned null context of classifier-free guidance."""

    def __init__(self, p: dict[str, Any]) -> None:
        from monai.networks.nets import DiffusionModelUNet

        super().__init__()
        dim, k = p["cross_attention_dim"], p["context_tokens"]
        self.tokens, self.dim = k, dim
        self.unet = DiffusionModelUNet(
            spatial_dims=2, in_channels=1, out_channels=1, channels=tuple(p["channels"]),
            attention_levels=tuple(p["attention_levels"]), num_res_blocks=p["num_res_blocks"],
            norm_num_groups=p["norm_num_groups"], num_head_channels=min(32, dim),
            with_conditioning=True, cross_attention_dim=dim)
        self.embed = nn.Sequential(nn.Linear(1 + 2 * N_FREQ, dim), nn.SiLU(), nn.Linear(dim, k * dim))
        self.null = nn.Parameter(0.02 * torch.randn(k, dim))

    def context(self, position: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        """(n, tokens, dim) context; rows where `drop` is True get the null context."""
        ctx = self.embed(position_features(position)).view(-1, self.tokens, self.dim)
        if drop is None:
            return ctx
        return torch.where(drop[:, None, None], self.null.expand_as(ctx), ctx)

    def null_context(self, n: int) -> torch.Tensor:
        return self.null.expand(n, -1, -1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.unet(x, timesteps=t, context=context)


def denoising_loss(model: PositionalDenoiser, scheduler, x0: torch.Tensor, context: torch.Tensor,
                   gen: torch.Generator | None = None) -> torch.Tensor:
    """MSE between the model's output and its target (the noise, the velocity or x0, by the
    scheduler's `prediction_type`) at uniform timesteps; draws from `gen` (CPU) when given, so a fixed
    generator gives the same validation loss every epoch."""
    dev = x0.device
    t = torch.randint(0, T_TRAIN, (len(x0),), generator=gen).to(dev)
    noise = torch.randn(x0.shape, generator=gen).to(dev)
    xt = scheduler.add_noise(original_samples=x0, noise=noise, timesteps=t)
    target = {"epsilon": noise, "sample": x0}.get(scheduler.prediction_type)
    if target is None:
        target = scheduler.get_velocity(x0, noise, t)
    return torch.mean((model(xt, t, context) - target) ** 2)


@torch.no_grad()
def ddim_sample(model: PositionalDenoiser, noise: torch.Tensor, position: torch.Tensor, *, steps: int,
                guidance: float, prediction: str, schedule: str) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) from `noise` with classifier-free guidance `guidance` (applied
    to the model output, whichever quantity it predicts: the combination is linear in all three)."""
    from monai.networks.schedulers import DDIMScheduler

    scheduler = DDIMScheduler(num_train_timesteps=T_TRAIN, schedule=schedule, clip_sample=True,
                              prediction_type=prediction)
    scheduler.set_timesteps(steps)
    n = len(noise)
    cond = model.context(position)
    null = model.null_context(n)
    x = noise
    for t in scheduler.timesteps:
        tt = torch.full((n,), int(t), dtype=torch.long, device=x.device)
        if guidance == 1.0:
            out = model(x, tt, cond)
        elif guidance == 0.0:
            out = model(x, tt, null)
        else:
            out_c, out_u = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([cond, null])).chunk(2)
            out = out_u + guidance * (out_c - out_u)
        x, _ = scheduler.step(out, int(t), x)
    return x


@register
class DiffusionGenerator(ImageGenerator):
    name = "diffusion"
    summary = "DDPM/DDIM UNet (MONAI) on slices, position via cross-attention, classifier-free guidance"
    conditional = True
    saved_before = {"prediction": "epsilon"}

    def __init__(self, budget: str = "default", **params: Any) -> None:
        unknown = set(params) - set(BUDGETS["default"]) - set(COMMON)
        if unknown:
            raise TypeError(f"unknown parameters {sorted(unknown)}")
        from monai.networks.schedulers import NoiseSchedules

        if params.get("prediction", COMMON["prediction"]) not in PREDICTIONS:
            raise TypeError(f"prediction must be one of {', '.join(PREDICTIONS)}")
        if params.get("schedule", COMMON["schedule"]) not in NoiseSchedules:
            raise TypeError(f"schedule must be one of {', '.join(NoiseSchedules.names)}")
        super().__init__(budget=budget, **{**COMMON, **BUDGETS[budget], **params})
        self._shared_noise = False

    def _build(self, size: int) -> dict[str, Any]:
        if size % 2 ** (len(self.params["channels"]) - 1):
            raise ValueError(f"diffusion: size {size} not divisible by the UNet's downsampling")
        model = PositionalDenoiser(self.params).to(self.device)
        return {"denoiser": model, "ema": _EMA(model, self.params["ema_decay"]).to(self.device)}

    def _config(self, n: int, seed: int) -> dict[str, Any]:
        """What a checkpoint must match to be resumed."""
        p = {k: v for k, v in self.params.items() if k not in NOT_IN_CONFIG}
        return {"params": p, "seed": seed, "slices": n, "size": self.size, "budget": self.budget}

    def _fit(self, train_set: SliceSet, seed: int, checkpoint_dir: Path | None) -> None:
        from monai.networks.schedulers import DDPMScheduler

        p = self.params
        seed_everything(seed)
        self.modules = self._build(self.size)  # rebuilt after seeding: reproducible initial weights
        model, ema = self.modules["denoiser"], self.modules["ema"]
        scheduler = DDPMScheduler(num_train_timesteps=T_TRAIN, schedule=p["schedule"], prediction_type=p["prediction"])
        opt = torch.optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=1e-4)

        def step(x, pos):
            drop = torch.rand(len(x)).to(x.device) < p["cond_dropout"]
            loss = denoising_loss(model, scheduler, x, model.context(pos, drop))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema.update(model)
            return {"loss": float(loss.detach())}

        def val_loss(x, pos):  # of the averaged weights, the ones sampled from; same draws every epoch
            gen = torch.Generator().manual_seed(seed + 1)
            m = ema.model
            return float(np.mean([float(denoising_loss(m, scheduler, x, m.context(pos), gen))
                                  for _ in range(VAL_DRAWS)]))

        ckpt = checkpoint_dir or p["checkpoint_dir"]
        result = train(
            self.modules, {"adamw": opt}, step,
            (train_set.images.astype(np.float32), train_set.position.astype(np.float32)),
            epochs=p["epochs"], batch_size=p["batch_size"], seed=seed, val_loss=val_loss,
            val_fraction=p["val_fraction"] if len(train_set) >= 20 else 0.0, patience=p["patience"],
            device=self.device, checkpoint_dir=ckpt, resume=ckpt is not None,
            config=self._config(len(train_set), seed), desc="mri diffusion",
            on_step=self.on_step)
        self.history = result.history

    def sample(self, positions: np.ndarray, *, seed: int, shared_noise: bool = False) -> np.ndarray:
        """`shared_noise`: every slice starts from the same noise image (one volume's slices)."""
        self._shared_noise = shared_noise
        try:
            return super().sample(positions, seed=seed)
        finally:
            self._shared_noise = False

    def _sample(self, positions: np.ndarray, seed: int) -> np.ndarray:
        p, n, s = self.params, len(positions), self.size
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn((1 if self._shared_noise else n, 1, s, s), generator=gen).expand(n, -1, -1, -1)
        model = self.modules["ema"].model.eval()
        pos = torch.as_tensor(positions, dtype=torch.float32)
        out = []
        with num_threads(1 if self.device == "cpu" else None):
            for i in range(0, n, SAMPLE_CHUNK):
                out.append(ddim_sample(model, noise[i:i + SAMPLE_CHUNK].to(self.device),
                                       pos[i:i + SAMPLE_CHUNK].to(self.device),
                                       steps=p["ddim_steps"], guidance=p["guidance_scale"],
                                       prediction=p["prediction"], schedule=p["schedule"]).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 1, s, s), dtype=np.float32)
