"""Benchmark: every MRI model on the same data and budget (issue 6).

    .venv/bin/python benchmarks/mri.py                          # all models, default budget, seed 0
    .venv/bin/python benchmarks/mri.py --budget tiny --models dcgan diffusion
    .venv/bin/python benchmarks/mri.py --models --curve 60 120 240   # diffusion learning curve only
    .venv/bin/python benchmarks/mri.py --cpu-marks 60 150 300 --raw R.json   # every model at equal training CPU

Data: the bundled MNI152 pseudo-cohort (12 subjects, 32x32 axial slices), split by subject 70/30
with the run's seed (synth_pipeline.imaging.pipeline.ingest / split: the same code as mri-release).
Each model is fitted on the train slices and samples one slice per holdout slice at its position;
`pipeline.evaluate` gives FID / KID (against the holdout, on the fixed random-weight feature net),
position-matched SSIM / PSNR, the conditioning error (position regressor trained on real train
slices), memorisation in pixel and feature space, and the assembled volume's neighbouring-slice
consistency; the default gates say whether it would publish. Train / sample wall times are measured
in this process (1 torch thread) and are only comparable within one run.

Two reference rows put the numbers on a scale: `fresh subjects (floor)` are 4 new pseudo-cohort
subjects (another cohort seed, never in train or holdout) scored like a generator: what an independent
real sample of the same population gets; and `colin27 (real, external)` is Colin Holmes' scan from Debian's mricron-data, a real head that is NOT derived from the
MNI template: it must score far better than noise and than weak generators, or the metrics would only
reward template-likeness.

`--curve E1 E2 ...` adds the diffusion model scored after E1, E2, ... epochs of one continued run
(no early stopping, each stage resumed from the last one's checkpoint, fit time cumulative): where
its FID stands against the GANs as its training budget grows.

`--cpu-marks S1 S2 ...` trains every model of --models once with no step or epoch limit and scores it
whenever its training has used S1, S2, ... seconds of this process's CPU (time.process_time, scoring
excluded; the last mark stops it): equal-cost learning curves. CPU time rather than wall time because
this machine is shared: a process's CPU seconds do not grow when other processes take the cores.
Scoring runs inside the training loop's `on_step` on the current weights, so the marks do not change
the training. `--save DIR` keeps each model at each mark; `--load DIR ...` scores such a saved model
again with `--params` applied to its sampling (e.g. fewer DDIM steps on the same weights).
`--from-raw A.json B.json ... --plot P.png` renders the marks as one table per seed mark, mean ± sd
over seeds where a mark ran on several, and the FID / conditioning-error curves (mean over seeds,
shaded from the lowest to the highest seed). A --load of a `--save` folder `NAME-MARK` joins the
curves as the model `NAME (params)`, e.g. `diffusion (ddim_steps 10)`.

Writes a Markdown table (--out) after every model, the raw rows (--raw; with each trained model's
losses at its first epoch and averaged over its last tenth of epochs) and a montage (--montage):
one row of slices per model at 10 fixed positions (unconditional models: their first 10 samples).
"""

import argparse
import contextlib
import json
import os
import platform
import random
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synth_pipeline.imaging import pipeline  # noqa: E402
from synth_pipeline.imaging.config import MriConfig  # noqa: E402
from synth_pipeline.imaging.gates import judge_all  # noqa: E402
from synth_pipeline.imaging.metrics.conditioning import fit_position_regressor  # noqa: E402
from synth_pipeline.imaging.models.base import load_image_generator, make_image_generator  # noqa: E402
from synth_pipeline.imaging.slices import SliceSet  # noqa: E402
from synth_pipeline.metrics.base import MetricResult  # noqa: E402

MODELS = ("dcgan", "wgan_gp", "r3gan_stacked", "r3gan_positional", "stylegan3_stacked", "stylegan3_positional",
          "r3gan_3d", "diffusion", "copy")
MONTAGE_POSITIONS = np.linspace(0.05, 0.95, 10).astype(np.float32)
COLS = [("fid", "FID ↓", 3), ("kid", "KID ↓", 4), ("fid_ratio", "FID / noise FID ↓", 3),
        ("ssim_matched", "SSIM ↑", 3), ("psnr_matched", "PSNR dB ↑", 2), ("conditioning_mae", "cond. MAE ↓", 3),
        ("memorisation_pixel", "memo px", 3), ("memorisation_feature", "memo feat", 3),
        ("exact_copies", "exact copies", 3)]


class _Reference:
    """A fixed set of real slices posing as a generator, so reference rows go through evaluate()."""

    conditional = True

    def __init__(self, slices: SliceSet) -> None:
        self.slices = slices

    def sample(self, positions: np.ndarray, *, seed: int, **_) -> np.ndarray:
        idx = np.abs(self.slices.position[None, :] - np.asarray(positions)[:, None]).argmin(axis=1)
        return self.slices.images[idx]


def _row(name: str, report: dict, cfg: MriConfig, **extra) -> dict:
    metrics = [MetricResult.from_dict(m) for m in report["metrics"]]
    gates = judge_all(metrics, cfg.thresholds)
    return {"model": name, **{m.name: m.value for m in metrics},
            "fid_detail": next(m.detail for m in metrics if m.name == "fid_ratio"),
            "neighbour_consistency": report["volume"]["neighbour_consistency"],
            "real_neighbour_consistency": report["volume"]["real_neighbour_consistency"],
            "publishes": all(g.passed for g in gates), "gates_failed": [g.gate for g in gates if not g.passed],
            **extra}


def _colin27(cfg: MriConfig) -> SliceSet | None:
    from synth_pipeline.imaging.cohort import colin27_path
    from synth_pipeline.imaging.volumes import extract_slices, load_volume

    path = colin27_path()
    return extract_slices([load_volume(path)], size=cfg.size) if path else None


def _fresh_subjects(cfg: MriConfig, cohort_seed: int) -> SliceSet:
    import tempfile

    from synth_pipeline.imaging.cohort import write_pseudo_cohort
    from synth_pipeline.imaging.volumes import extract_slices, load_folder

    with tempfile.TemporaryDirectory() as d:
        write_pseudo_cohort(Path(d), n_subjects=4, seed=cohort_seed)
        return extract_slices(load_folder(Path(d)).volumes, size=cfg.size)


def run(args) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    cfg = MriConfig(budget=args.budget, seed=args.seed, size=args.size, cohort_subjects=args.subjects)
    slices = pipeline.ingest(cfg, pipeline.cache_dir())
    train, holdout = pipeline.split(slices, cfg)
    positions = pipeline.sample_positions(holdout, cfg)
    regressor = fit_position_regressor(train, seed=cfg.seed)  # every row is scored by the same one
    rows, montage = [], {"real holdout": _Reference(holdout).sample(MONTAGE_POSITIONS, seed=0)}
    refs = {"fresh subjects (floor)": _fresh_subjects(cfg, args.seed + 100)} if args.references else {}
    colin = _colin27(cfg) if args.references else None
    if colin is not None:
        refs["colin27 (real, external)"] = colin
    for name, real in refs.items():
        gen = _Reference(real)
        fake = pipeline.synthetic_set(gen.sample(positions, seed=0), positions)
        volume = pipeline.synthetic_volume(gen, train, cfg.seed)
        report = pipeline.evaluate(fake, volume, train, holdout, seed=cfg.seed, regressor=regressor)
        rows.append(_row(name, report, cfg, reference=True))
        _write(rows, args)
    overrides = dict(_param_arg(x) for x in args.params)

    def score(label: str, gen, fit_s: float, params: dict, in_montage: bool = True, **extra) -> None:
        t0 = time.perf_counter()
        images = gen.sample(positions, seed=cfg.seed + 1)
        sample_s = time.perf_counter() - t0
        fake = pipeline.synthetic_set(images, positions)
        report = pipeline.evaluate(fake, pipeline.synthetic_volume(gen, train, cfg.seed), train, holdout, seed=cfg.seed,
                                   regressor=regressor)
        rows.append(_row(label, report, cfg, fit_s=fit_s, sample_s=sample_s, n_fake=len(fake),
                         conditional=bool(gen.conditional), params=params,
                         losses=_loss_summary(getattr(gen, "history", [])), seed=cfg.seed, **extra))
        if in_montage:
            montage[label] = gen.sample(MONTAGE_POSITIONS, seed=cfg.seed + 2) if gen.conditional else images[:10]
        _write(rows, args)
        _montage(montage, Path(args.montage))
        if args.raw:
            np.savez(Path(args.raw).with_suffix(".npz"), **montage)

    for folder in map(Path, args.load):
        gen = load_image_generator(folder)
        params = overrides.get(gen.name, {})
        gen.params.update(params)  # sampling settings only: the weights are the saved ones
        print(f"[mri-bench] {folder.name} (loaded) {params} ...", file=sys.stderr, flush=True)
        mark = _saved_mark(folder, gen.name)
        if mark is None:
            score(_label(f"{folder.name} (loaded)", params), gen, None, params)
        else:  # a --save folder NAME-MARK: the row joins the curves as the model `NAME (params)`
            score(f"{_label(gen.name, params)} @ {mark} CPU-s", gen, None, params, cpu_mark=mark, loaded=str(folder))
    if args.cpu_marks:
        _cpu_marks(args, overrides, train, score)
        return rows
    for name in args.models:
        params = overrides.get(name, {})
        label = _label(name, params)
        print(f"[mri-bench] {label} ({args.budget}) ...", file=sys.stderr, flush=True)
        gen = make_image_generator(name, budget=args.budget, device=args.device, **params)
        t0 = time.perf_counter()
        gen.fit(train, seed=cfg.seed)
        score(label, gen, time.perf_counter() - t0, params)
    if args.curve:
        _curve(args, overrides.get("diffusion", {}), train, score)
    return rows


def _saved_mark(folder: Path, name: str) -> float | None:
    """The CPU mark of a folder written by --save (`NAME-MARK`), None for any other folder."""
    head, _, mark = folder.name.rpartition("-")
    try:
        return float(mark) if head == name else None
    except ValueError:
        return None


def _loss_summary(history: list[dict]) -> dict:
    """The training losses at the first epoch and averaged over the last tenth of the epochs (raw rows only)."""
    if not history:
        return {}
    tail = history[-max(1, len(history) // 10):]
    keys = [k for k in history[-1] if k not in ("epoch", "val")]
    return {"epochs": len(history), "first": {k: history[0].get(k) for k in keys},
            "last_tenth_mean": {k: float(np.mean([h[k] for h in tail if k in h])) for k in keys}}


def _label(name: str, params: dict) -> str:
    """`name (k v, ...)`; a key with value None is shown alone."""
    parts = [k if v is None else f"{k} {v}" for k, v in params.items()]
    return name + (f" ({', '.join(parts)})" if parts else "")


def _curve(args, params: dict, train: SliceSet, score) -> None:
    """The diffusion model scored after each of `args.curve` epochs of one continued run (no early
    stopping; each stage resumes the previous one's checkpoint, so fit time is cumulative)."""
    import tempfile

    fit_s = 0.0
    with tempfile.TemporaryDirectory() as ckpt:
        for epochs in sorted(args.curve):
            stage = {**params, "epochs": epochs, "patience": None, "checkpoint_dir": ckpt}
            label = _label("diffusion", {f"{epochs} epochs, no early stopping": None, **params})
            print(f"[mri-bench] {label} ...", file=sys.stderr, flush=True)
            gen = make_image_generator("diffusion", budget=args.budget, device=args.device, **stage)
            t0 = time.perf_counter()
            gen.fit(train, seed=args.seed)
            fit_s += time.perf_counter() - t0
            score(label, gen, fit_s, {k: v for k, v in stage.items() if k != "checkpoint_dir"})


UNBOUNDED = {"diffusion": {"epochs": 10**6, "patience": None}}  # every other model: GAN steps
GAN_UNBOUNDED = {"steps": 10**8}


@contextlib.contextmanager
def _rng_kept():
    """Python's, numpy's and torch's global RNG states restored after the block."""
    import torch

    py, npst = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        yield
    random.setstate(py)
    np.random.set_state(npst)


def _cpu_marks(args, overrides: dict, train: SliceSet, score) -> None:
    """Every model of --models trained once with no step or epoch limit, scored whenever its training
    CPU time (this process's CPU seconds since fit() began, scoring's own excluded) passes a mark of
    --cpu-marks, stopped at the last. Scoring runs inside the training loop's `on_step` on the current
    weights (the diffusion model's EMA weights, the GANs' generator), with the global RNGs restored
    after it and the modules back in train mode, so the marks do not change the training."""
    marks = sorted(args.cpu_marks)
    for name in args.models:
        params = {**UNBOUNDED.get(name, GAN_UNBOUNDED), **overrides.get(name, {})}
        shown = {k: v for k, v in params.items() if k not in ("steps", "epochs", "patience")}
        print(f"[mri-bench] {name} to {marks[-1]} CPU-s ({args.budget}) ...", file=sys.stderr, flush=True)
        gen = make_image_generator(name, budget=args.budget, device=args.device, **params)
        state = {"next": 0, "steps": 0, "scoring_cpu": 0.0, "scoring_wall": 0.0}
        cpu0, wall0 = time.process_time(), time.perf_counter()

        def on_step() -> bool:
            state["steps"] += 1
            used = time.process_time() - cpu0 - state["scoring_cpu"]
            if used < marks[state["next"]]:
                return False
            mark, c0, w0 = marks[state["next"]], time.process_time(), time.perf_counter()
            print(f"[mri-bench] {name} at {mark} CPU-s ({state['steps']} steps) ...", file=sys.stderr, flush=True)
            with _rng_kept():
                score(_label(f"{name} @ {mark} CPU-s", shown), gen, time.perf_counter() - wall0 - state["scoring_wall"],
                      shown, in_montage=mark == marks[-1], cpu_mark=mark, train_cpu_s=used, steps=state["steps"])
            if args.save:
                gen.save(Path(args.save) / f"{name}-{mark:g}")
            for m in gen.modules.values():
                m.train()
            state["scoring_cpu"] += time.process_time() - c0
            state["scoring_wall"] += time.perf_counter() - w0
            state["next"] += 1
            return state["next"] == len(marks)

        gen.fit(train, seed=args.seed, on_step=on_step)
        if state["next"] < len(marks):
            print(f"[mri-bench] {name}: training ended before {marks[state['next']]} CPU-s", file=sys.stderr)


def from_raw(args) -> None:
    """One report from several runs' --raw files (reference rows taken once, from the first)."""
    rows, montage = [], {}
    for raw in args.from_raw:
        rows_in = json.loads(Path(raw).read_text())
        seed = next((r["seed"] for r in rows_in if "seed" in r), args.seed)
        for r in rows_in:
            r.setdefault("seed", seed)
            if seed != args.seed:
                r["model"] += f" (seed {seed})"
            if not any(x["model"] == r["model"] for x in rows):
                rows.append(r)
        if Path(raw).with_suffix(".npz").is_file():  # absent when the run scored only reference rows
            with np.load(Path(raw).with_suffix(".npz")) as z:
                montage.update({k: z[k] for k in z.files if k not in montage})
    args.raw = None
    _write(rows, args)
    if montage:  # the .npz files are optional: the tables and curves need only the .json
        _montage(montage, Path(args.montage))
    if args.plot:
        _curve_plot(rows, Path(args.plot))


def _base(label: str) -> str:
    """The model name of a --cpu-marks row label (`name @ mark CPU-s ...`)."""
    return label.split(" @ ")[0]


def _curve_section(rows: list[dict], seed: int) -> str:
    """Markdown for the --cpu-marks rows: per model (seed `seed`), FID / KID / conditioning error at
    each mark and the last mark's memorisation and verdict; then, at every mark scored on more than
    one seed, each model's mean ± sd over the seeds."""
    curve = [r for r in rows if r.get("cpu_mark") is not None]
    marks = sorted({r["cpu_mark"] for r in curve})
    models = list(dict.fromkeys(_base(r["model"]) for r in curve))
    at = {(_base(r["model"]), r["cpu_mark"], r["seed"]): r for r in curve}
    head = ["model", *[f"{q} @ {m:g}" for q in ("FID", "KID", "cond. MAE") for m in marks],
            *[f"{q} @ {marks[-1]:g}" for q in ("steps", "memo px", "sample s", "publishes")]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in models:
        got = [at.get((name, m, seed)) for m in marks]
        last = got[-1] or {}
        cells = [_fmt(g.get(k), d) if g else "—" for k, d in (("fid", 3), ("kid", 4), ("conditioning_mae", 3))
                 for g in got]
        verdict = "—" if not last else ("yes" if last["publishes"] else "no: " + ", ".join(last["gates_failed"]))
        tail = [_fmt(last.get("steps"), 0), _fmt(last.get("memorisation_pixel"), 3), _fmt(last.get("sample_s"), 1)]
        lines.append("| " + " | ".join([name, *cells, *tail, verdict]) + " |")
    text = (f"Training CPU seconds per mark (seed {seed}); one continued run per model, scored at each mark "
            "on its current weights.\n\n" + "\n".join(lines) + "\n")
    for m in marks:
        seeds = sorted({r["seed"] for r in curve if r["cpu_mark"] == m})
        if len(seeds) < 2:
            continue
        head = ["model", "seeds", "steps", "FID", "KID", "cond. MAE", "memo px", "publishes"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name in models:
            got = [at[(name, m, sd)] for sd in seeds if (name, m, sd) in at]
            if not got:
                continue

            def ms(key: str, digits: int) -> str:
                v = np.array([g[key] for g in got], dtype=float)
                return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v[0]:.{digits}f}"

            steps = " / ".join(_fmt(g.get("steps"), 0) for g in got)  # CPU-s per step varies with the machine's load
            lines.append("| " + " | ".join([name, ",".join(str(g["seed"]) for g in got), steps, ms("fid", 3), ms("kid", 4),
                                             ms("conditioning_mae", 3), ms("memorisation_pixel", 3),
                                             f"{sum(g['publishes'] for g in got)}/{len(got)}"]) + " |")
        text += (f"\nAt {m:g} training CPU-s over seeds {', '.join(map(str, seeds))} (each seed its own split, "
                 "initialisation and batches; mean ± sample sd):\n\n" + "\n".join(lines) + "\n")
    return text


def _curve_plot(rows: list[dict], path: Path) -> None:
    """FID (log scale) and conditioning error against training CPU seconds, one line per model: the
    mean over the seeds scored at each mark, shaded between the seeds' lowest and highest value where
    there are several (dotted: unconditional); the fresh-subject floor (mean over the same seeds) dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = [r for r in rows if r.get("cpu_mark") is not None]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, name in enumerate(dict.fromkeys(_base(r["model"]) for r in curve)):
        mine = [r for r in curve if _base(r["model"]) == name]
        marks = sorted({r["cpu_mark"] for r in mine})
        seeds = sorted({r["seed"] for r in mine})
        style = {"color": f"C{i % 10}", "lw": 2.5 if name.startswith("diffusion") else 1.3,
                 "ls": "-" if mine[0].get("conditional", True) else ":"}
        label = name if len(seeds) == 1 else f"{name}, seeds {','.join(map(str, seeds))}"
        for ax, key in zip(axes, ("fid", "conditioning_mae")):
            vals = [np.array([r[key] for r in mine if r["cpu_mark"] == m], dtype=float) for m in marks]
            ax.plot(marks, [v.mean() for v in vals], marker="o", label=label, **style)
            if len(seeds) > 1:
                ax.fill_between(marks, [v.min() for v in vals], [v.max() for v in vals], color=style["color"],
                                alpha=0.15, lw=0)
    floors = [r for r in rows if r["model"].startswith("fresh subjects (floor)")]
    titles = ("FID vs holdout ↓", "conditioning error (position MAE) ↓")
    for ax, key, title in zip(axes, ("fid", "conditioning_mae"), titles):
        if floors:
            ax.axhline(np.mean([r[key] for r in floors]), color="k", ls="--", lw=1,
                       label=f"fresh subjects (floor), seeds {','.join(str(r['seed']) for r in floors)}")
        ax.set_xlabel("training CPU seconds (1 torch thread)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def _param_arg(text: str) -> tuple[str, dict]:
    """`NAME=JSON` -> (NAME, params): one model's parameters over its budget's defaults."""
    name, _, body = text.partition("=")
    return name, json.loads(body)


def _fmt(v, digits: int) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _write(rows: list[dict], args) -> None:
    if args.raw:
        Path(args.raw).write_text(json.dumps(rows, indent=1, default=float))
    head = ["model", *[c[1] for c in COLS], "slice consistency (real)", "fit s", "sample s", "publishes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], *[_fmt(r.get(k), d) for k, _, d in COLS],
                 f"{_fmt(r['neighbour_consistency'], 3)} ({_fmt(r['real_neighbour_consistency'], 3)})",
                 _fmt(r.get("fit_s"), 1), _fmt(r.get("sample_s"), 2),
                 "—" if r.get("reference") else ("yes" if r["publishes"] else "no: " + ", ".join(r["gates_failed"]))]
        lines.append("| " + " | ".join(cells) + " |")
    d = rows[0]["fid_detail"]
    text = (f"# MRI benchmark (issue 6)\n\n{args.note}\n\nProduced by `benchmarks/mri.py --budget {args.budget} "
            f"--seed {args.seed}` on {platform.machine()} ({os.cpu_count()} CPU cores, device {args.device}, "
            f"1 torch thread), {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. {args.subjects} pseudo-cohort "
            f"subjects, {args.size}x{args.size} slices. Noise-reference FID {d['noise_fid']:.3f}; real "
            f"train-vs-holdout FID {d['real_train_vs_holdout_fid']:.3f}.\n\n" + "\n".join(lines) + "\n\n"
            "Columns: see docs/mri_metrics.md. FID/KID use a fixed random-weight Inception-style network (no "
            "pretrained Inception weights ship in any installable package), so they rank models within this "
            "table and are not comparable with published FIDs. `cond. MAE` is the position regressor's error "
            "on generated slices against the requested position (unconditional models cannot follow it). "
            "`slice consistency` is the mean SSIM of neighbouring slices of one assembled synthetic volume "
            "(real volumes in brackets). `publishes` = both default MRI gates pass.\n\n"
            f"![montage]({Path(args.montage).name})\n")
    if any(r.get("cpu_mark") is not None for r in rows):
        text += "\n## Training-CPU marks\n\n" + _curve_section(rows, args.seed)
    Path(args.out).write_text(text)


def _montage(rows: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 10, figsize=(10 * 0.9, len(rows) * 0.95), squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c in range(10):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(images):
                ax.imshow(images[c, 0], cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        axes[r, 0].text(-0.1, 0.5, "\n".join(textwrap.wrap(name, 24)), transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=8)
    fig.subplots_adjust(left=0.16, right=0.99, top=0.99, bottom=0.01, wspace=0.04, hspace=0.06)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="*", default=list(MODELS))
    p.add_argument("--budget", choices=("tiny", "default", "full"), default="default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--subjects", type=int, default=12)
    p.add_argument("--device", default="cpu")
    p.add_argument("--params", nargs="*", default=[], metavar="NAME=JSON",
                   help='per-model parameters over the budget, e.g. diffusion=\'{"epochs": 100}\'')
    p.add_argument("--curve", nargs="*", type=int, default=[], metavar="EPOCHS",
                   help="also score the diffusion model after each of these epoch counts of one continued run")
    p.add_argument("--cpu-marks", nargs="*", type=float, default=[], metavar="CPU_S",
                   help="train every model of --models without a step limit and score it at these training "
                        "CPU seconds (one continued run per model; replaces the budget's length)")
    p.add_argument("--save", default=None, metavar="DIR",
                   help="with --cpu-marks: save each model at each mark to DIR/NAME-MARK (for --load)")
    p.add_argument("--load", nargs="*", default=[], metavar="DIR",
                   help="also score generators saved by --save, with --params applied to their sampling "
                        "(e.g. diffusion='{\"ddim_steps\": 20}'); pass --models with no names to score only these")
    p.add_argument("--plot", default=None,
                   help="with --from-raw: the --cpu-marks curves (FID and conditioning error) to this PNG")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "MRI.md"))
    p.add_argument("--montage", default=str(ROOT / "benchmarks" / "mri_montage.png"))
    p.add_argument("--raw", default=None)
    p.add_argument("--note", default="")
    p.add_argument("--no-references", dest="references", action="store_false",
                   help="skip the fresh-subjects and Colin27 reference rows (quick checks)")
    p.add_argument("--from-raw", nargs="+", default=None, help="render one report from these --raw files")
    args = p.parse_args()
    from_raw(args) if args.from_raw else run(args)


if __name__ == "__main__":
    main()
