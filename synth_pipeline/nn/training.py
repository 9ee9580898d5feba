"""Torch training infrastructure both arms share (tabular cwgan_gp and diffusion; MRI GANs, diffusion
and feature nets), all pickle-free.

`train(...)` — one training loop for every torch model: seeded batching, a progress bar with the
losses, early stopping on a validation loss with the best weights restored, a checkpoint every
epoch (state_dicts + JSON) and resume after an interruption; with `dp=DPTraining(...)`, DP-SGD
through Opacus (Poisson batches, per-sample clipping, noise set for a target (ε, δ)). See its docstring. `num_threads(n)`
is the context manager it uses to run torch on one CPU thread (use it around sampling too);
`deterministic(device)` turns on torch's deterministic algorithms for a block.
`save_modules` / `load_modules` write and read final weights (state_dicts only, loaded with
weights_only=True).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_modules(path: Path, modules: dict[str, Any]) -> None:
    """torch.save of {name: module.state_dict()} (tensors only), written atomically."""
    import torch

    states = {name: m.state_dict() for name, m in modules.items()}
    _atomic(Path(path), lambda p: torch.save(states, p))


def load_modules(path: Path, modules: dict[str, Any], device: str = "cpu") -> None:
    """Load state_dicts written by `save_modules` into `modules` (weights_only=True: no pickle)."""
    import torch

    states = torch.load(Path(path), map_location=device, weights_only=True)
    for name, m in modules.items():
        m.load_state_dict(states[name])


def write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write (sorted keys, so identical content gives identical bytes)."""
    text = json.dumps(obj, indent=1, sort_keys=True)
    _atomic(Path(path), lambda p: p.write_text(text))



CHECKPOINT_JSON = "checkpoint.json"


@dataclass(frozen=True)
class DPTraining:
    """DP-SGD for `train` through Opacus: per-sample gradients of `module` clipped to `max_grad_norm`,
    Gaussian noise on their sum, Poisson sampling of the rows (each row in a batch with probability
    batch_size / rows), the noise multiplier chosen by Opacus' `make_private_with_epsilon` so that
    `epochs` epochs spend (`epsilon`, `delta`) under the `accountant` ("prv" or "rdp")."""

    epsilon: float
    delta: float
    module: str
    optimizer: str
    max_grad_norm: float = 1.0
    accountant: str = "prv"
    max_noise_multiplier: float | None = None  # refuse (NoiseTooLarge) before training above this


class NoiseTooLarge(ValueError):
    """DP-SGD would need more noise than DPTraining.max_noise_multiplier allows; nothing was trained."""


@dataclass
class TrainResult:
    """What `train` did. `epochs_run` counts every completed epoch, those before a resume included;
    `history` holds one dict per epoch: "epoch", the step losses averaged over the epoch, "val"."""

    epochs_run: int
    best_epoch: int | None
    best_val: float | None
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)
    dp: dict[str, Any] | None = None  # with DPTraining: noise multiplier, sample rate, steps, epsilon spent


def progress_enabled() -> bool:
    """SYNTH_PROGRESS=0 turns bars off, =1 forces them on; otherwise on only when stderr is a TTY."""
    flag = os.environ.get("SYNTH_PROGRESS")
    if flag is not None:
        return flag not in ("0", "", "false", "no")
    return sys.stderr.isatty()


@contextlib.contextmanager
def deterministic(device: str):
    """torch.use_deterministic_algorithms(True, warn_only=True) for the block, previous setting
    restored after; on CUDA, CUBLAS_WORKSPACE_CONFIG is set (effective if cuBLAS is not yet started)."""
    import torch

    if str(device).startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


@contextlib.contextmanager
def num_threads(n: int | None):
    """torch.set_num_threads(n) for the block (None: unchanged), the previous count restored after."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _rng_state(batch_gen, device: str) -> dict[str, Any]:
    import torch

    py = random.getstate()
    npst = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [npst[0], npst[1].tolist(), int(npst[2]), int(npst[3]), float(npst[4])],
        "torch": torch.get_rng_state().tolist(),
        "batches": batch_gen.get_state().tolist(),
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state().tolist()
    return state


def _set_rng_state(state: dict[str, Any], batch_gen, device: str) -> None:
    import torch

    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state((npst[0], np.asarray(npst[1], dtype=np.uint32), npst[2], npst[3], npst[4]))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    batch_gen.set_state(torch.tensor(state["batches"], dtype=torch.uint8))
    if "cuda" in state and str(device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state(torch.tensor(state["cuda"], dtype=torch.uint8))


def _clone_states(modules: dict[str, Any]) -> dict[str, dict]:
    return {n: {k: v.detach().clone() for k, v in m.state_dict().items()} for n, m in modules.items()}


def train(
    modules: dict[str, Any],
    optimizers: dict[str, Any],
    step: Callable[..., dict[str, float]],
    data: np.ndarray | Sequence[np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    val_loss: Callable[..., float] | None = None,
    val_fraction: float = 0.1,
    patience: int | None = None,
    weights: np.ndarray | None = None,
    device: str = "cpu",
    checkpoint_dir: Path | str | None = None,
    resume: bool = False,
    config: dict[str, Any] | None = None,
    desc: str = "train",
    threads: int | None = 1,
    dp: DPTraining | None = None,
    on_step: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train `modules` (dict name -> nn.Module) with `optimizers` (dict name -> torch optimizer).

    data      one array, or a tuple of arrays with equal first dimension (e.g. features, condition).
              They become tensors on `device`; every batch is a tuple of tensors, one per array.
    step      `step(*batch) -> {"loss name": float}`: one optimisation step on a batch (the
              function does backward/optimizer.step itself). Draw randomness from torch's global
              RNG (saved and restored on resume); keep any counter in a module buffer or
              optimizer state, so that the checkpoint holds everything.
    val_loss  `val_loss(*val_rows) -> float`, called once per epoch under torch.no_grad() with the
              modules in eval() mode, on the held-out `val_fraction` of the rows (a seeded split).
              Lower is better. Without it (or val_fraction=0) there is no early stopping.
    patience  stop after this many epochs without a better val loss (None: run every epoch). When
              there is a val loss the best epoch's weights are loaded into the modules at the end.
    weights   optional per-row sampling weights: each epoch then draws len(train rows) rows with
              replacement in proportion to them (training-by-sampling); otherwise a seeded
              shuffle. Batches use their own torch.Generator seeded from `seed`; the last partial
              batch is dropped when there is at least one full batch.
    seed      seeds python, numpy and torch at the start of a fresh run (build the modules after
              seeding too, e.g. with base.seed_everything, for reproducible initial weights).
    checkpoint_dir  when given, after every epoch: `epoch-NNNN.pt` (torch.save of state_dicts of the
              modules, optimizers and best weights: tensors and plain containers only) and then
              `checkpoint.json` (epoch, best epoch/val loss, stopped, history, config, RNG states as
              lists), each written atomically; the previous .pt is then removed.
    resume    continue from checkpoint_dir/checkpoint.json when present (loaded with
              weights_only=True) up to `epochs` in total; a resumed run gives the same weights as an
              uninterrupted one. `config` (JSON-able; leave `epochs` out of it) must equal the
              checkpoint's, else ValueError — it guards against resuming a different model.
    threads   on CPU, torch.set_num_threads(threads) for the loop, restored afterwards (None: leave
              it). One thread by default: these small MLPs gain little from more, a busy machine
              makes multi-threaded torch many times slower (spin-waiting), and results then do
              not depend on the machine's core count.
    dp        a DPTraining: DP-SGD through Opacus (see DPTraining). `optimizers[dp.optimizer]` is replaced
              in place by Opacus' DPOptimizer, so `step` must look it up in the dict; the module keeps
              its identity (hooks, no wrapper). Every row trains (no validation rows, no early
              stopping and no best-epoch pick: those would read private rows outside the budget), the
              batches are Poisson samples, and neither checkpoint_dir nor weights may be given.
              The result's `dp` records the noise multiplier and the epsilon Opacus' accountant spent.
    on_step   called after every optimisation step; when it returns True training stops after that
              step (the epoch's record averages the steps it ran). For budgets the caller measures,
              e.g. benchmarks/mri.py's training-CPU marks, which also score the model inside it.
    Runs under `deterministic(device)`; the progress bar (tqdm, see `progress_enabled`) shows the
    epoch's mean losses and the val loss.
    """
    import torch
    from tqdm.auto import tqdm

    arrays = [data] if isinstance(data, np.ndarray) else list(data)
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("train: data arrays differ in length")
    config = json.loads(json.dumps(config or {}))
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None

    # seeded split into train / validation rows (fixed by `seed`, identical on resume)
    order = np.random.default_rng(seed).permutation(n)
    if dp is not None and (ckpt is not None or weights is not None):
        raise ValueError("train: DP training takes neither a checkpoint_dir nor sampling weights")
    n_val = int(round(n * val_fraction)) if val_loss is not None and dp is None else 0
    n_val = min(n_val, n - 1) if n > 1 else 0
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    tensors = [torch.as_tensor(np.asarray(a), device=device) for a in arrays]
    train_t = [t[torch.as_tensor(train_idx, device=device)] for t in tensors]
    val_t = [t[torch.as_tensor(val_idx, device=device)] for t in tensors] if n_val else []
    w = None
    if weights is not None:
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64)[train_idx])
    n_train = len(train_idx)
    bs = max(1, min(batch_size, n_train))
    n_batches = n_train // bs

    batch_gen = torch.Generator().manual_seed(seed)
    start, best_epoch, best_val, since_best, stopped = 0, None, None, 0, False
    history: list[dict[str, float]] = []
    best_states: dict[str, dict] | None = None

    meta_path = ckpt / CHECKPOINT_JSON if ckpt is not None else None
    if resume and meta_path is not None and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta["config"] != config:
            raise ValueError(f"train: checkpoint in {ckpt} was written for another config; not resuming")
        states = torch.load(ckpt / meta["file"], map_location=device, weights_only=True)
        for name, m in modules.items():
            m.load_state_dict(states["modules"][name])
        for name, o in optimizers.items():
            o.load_state_dict(states["optimizers"][name])
        best_states = states.get("best") or None
        start, best_epoch, best_val = meta["epoch"], meta["best_epoch"], meta["best_val"]
        since_best, stopped, history = meta["since_best"], meta["stopped"], meta["history"]
        _set_rng_state(meta["rng"], batch_gen, device)
    else:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    private = _make_private(dp, modules, optimizers, train_t, bs, epochs, batch_gen) if dp is not None else None
    bar = tqdm(total=epochs, initial=min(start, epochs), desc=desc, disable=not progress_enabled(),
               leave=False, dynamic_ncols=True)
    try:
        with deterministic(device), num_threads(threads if not str(device).startswith("cuda") else None):
            epoch = start
            while epoch < epochs and not stopped:
                for m in modules.values():
                    m.train()
                sums: dict[str, float] = {}
                steps_run, halted = 0, False
                for batch in (private["loader"] if private else _batches(train_t, w, n_train, bs, n_batches,
                                                                         batch_gen, device)):
                    losses = step(*batch)
                    steps_run += 1
                    for k, v in losses.items():
                        sums[k] = sums.get(k, 0.0) + float(v)
                    if on_step is not None and on_step():
                        halted = True
                        break
                steps_run = max(1, steps_run)
                record = {"epoch": epoch + 1, **{k: v / steps_run for k, v in sums.items()}}
                if n_val:
                    for m in modules.values():
                        m.eval()
                    with torch.no_grad():
                        v = float(val_loss(*val_t))
                    record["val"] = v
                    if best_val is None or v < best_val:
                        best_val, best_epoch, since_best = v, epoch + 1, 0
                        best_states = _clone_states(modules)
                    else:
                        since_best += 1
                    if patience is not None and since_best >= patience:
                        stopped = True
                stopped = stopped or halted
                history.append(record)
                epoch += 1
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "epoch"})
                if ckpt is not None:
                    _write_checkpoint(ckpt, modules, optimizers, best_states, batch_gen, device, {
                        "epoch": epoch, "best_epoch": best_epoch, "best_val": best_val,
                        "since_best": since_best, "stopped": stopped, "history": history,
                        "config": config,
                    })
    finally:
        bar.close()
    if best_states is not None:
        for name, m in modules.items():
            m.load_state_dict(best_states[name])
    for m in modules.values():
        m.eval()
    dp_record = None
    if private is not None:
        dp_record = {**private["record"], "epsilon_spent": float(private["engine"].get_epsilon(dp.delta)),
                     "epochs": len(history)}
        private["hooks"].cleanup()
        optimizers[dp.optimizer] = private["original"]
    return TrainResult(epochs_run=len(history), best_epoch=best_epoch, best_val=best_val,
                       stopped_early=stopped, history=history, dp=dp_record)


def _batches(train_t, w, n_train: int, bs: int, n_batches: int, batch_gen, device: str):
    """The non-private batches: a seeded shuffle (or weighted draw), last partial batch dropped."""
    import torch

    if w is not None:
        perm = torch.multinomial(w, n_train, replacement=True, generator=batch_gen)
    else:
        perm = torch.randperm(n_train, generator=batch_gen)
    perm = perm.to(device)
    for b in range(max(1, n_batches)):
        idx = perm[b * bs:(b + 1) * bs]
        yield tuple(t[idx] for t in train_t)


def _make_private(dp: DPTraining, modules, optimizers, train_t, bs: int, epochs: int, batch_gen) -> dict[str, Any]:
    """Opacus' PrivacyEngine on modules[dp.module] / optimizers[dp.optimizer] (the optimizer replaced in
    the dict); the Poisson loader draws from `batch_gen`, the noise from torch's seeded global RNG."""
    from opacus import PrivacyEngine
    from opacus.validators import ModuleValidator
    from torch.utils.data import DataLoader, TensorDataset

    module = modules[dp.module]
    problems = ModuleValidator.validate(module, strict=False)
    if problems:
        raise ValueError(f"train: module '{dp.module}' is not DP-SGD compatible: {problems[0]}")
    engine = PrivacyEngine(accountant=dp.accountant)
    loader = DataLoader(TensorDataset(*train_t), batch_size=bs, shuffle=True, generator=batch_gen)
    original = optimizers[dp.optimizer]
    hooks, dp_opt, dp_loader = engine.make_private_with_epsilon(
        module=module, optimizer=original, data_loader=loader, target_epsilon=dp.epsilon, target_delta=dp.delta,
        epochs=epochs, max_grad_norm=dp.max_grad_norm, poisson_sampling=True, wrap_model=False)
    optimizers[dp.optimizer] = dp_opt
    if dp.max_noise_multiplier is not None and dp_opt.noise_multiplier > dp.max_noise_multiplier:
        hooks.cleanup()
        optimizers[dp.optimizer] = original
        raise NoiseTooLarge(f"noise multiplier {dp_opt.noise_multiplier:.1f} > max_noise_multiplier "
                            f"{dp.max_noise_multiplier:g}")
    record = {"accountant": dp.accountant, "noise_multiplier": float(dp_opt.noise_multiplier),
              "sample_rate": 1 / len(loader), "max_grad_norm": dp.max_grad_norm, "expected_batch_size": bs}
    return {"engine": engine, "loader": dp_loader, "hooks": hooks, "original": original, "record": record}


def _write_checkpoint(ckpt: Path, modules, optimizers, best_states, batch_gen, device: str,
                      meta: dict[str, Any]) -> None:
    import torch

    name = f"epoch-{meta['epoch']:04d}.pt"
    states = {
        "modules": {n: m.state_dict() for n, m in modules.items()},
        "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
        "best": best_states or {},
    }
    _atomic(ckpt / name, lambda p: torch.save(states, p))
    meta_path = ckpt / CHECKPOINT_JSON
    old = json.loads(meta_path.read_text())["file"] if meta_path.is_file() else None
    write_json(meta_path, {**meta, "file": name, "rng": _rng_state(batch_gen, device)})
    if old and old != name and (ckpt / old).is_file():
        (ckpt / old).unlink()
