"""Which inputs of the environment change the bytes of an MRI release?

Runs the MRI arm's core (ingest -> split -> fit -> sample -> volume -> metrics) at one budget under
several torch / BLAS thread counts (and, with --deterministic, torch's deterministic-algorithms flag),
each in a fresh process with OMP_NUM_THREADS / MKL_NUM_THREADS / OPENBLAS_NUM_THREADS set, and prints a
table: the candidate's sha256 (it names the release id), the assembled volume's sha256, and the largest
relative difference of any metric from the first row.

    .venv/bin/python benchmarks/mri_environment.py --models diffusion r3gan_positional --threads 1 2
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def one(model: str, budget: str, device: str, deterministic: bool) -> dict:
    """One run in this process: what the release id and the metrics are made of."""
    import hashlib

    import torch

    from synth_pipeline.imaging import pipeline
    from synth_pipeline.imaging.config import MriConfig
    from synth_pipeline.imaging.models.base import make_image_generator
    from synth_pipeline.imaging.publish import candidate_sha256
    from synth_pipeline.kernel import environment

    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    start = time.perf_counter()
    cfg = MriConfig(model=model, budget=budget)
    train, holdout = pipeline.split(pipeline.ingest(cfg, pipeline.cache_dir()), cfg)
    gen = make_image_generator(cfg.model, budget=cfg.budget, device=device, **cfg.model_params)
    gen.fit(train, seed=cfg.seed)
    positions = pipeline.sample_positions(holdout, cfg)
    fake = pipeline.synthetic_set(gen.sample(positions, seed=cfg.seed + 1), positions)
    volume = pipeline.synthetic_volume(gen, train, cfg.seed)
    report = pipeline.evaluate(fake, volume, train, holdout, seed=cfg.seed)
    return {"candidate": candidate_sha256(fake)[:12],
            "volume": hashlib.sha256(volume.images.tobytes()).hexdigest()[:12],
            "metrics": {m["name"]: m["value"] for m in report["metrics"] if isinstance(m["value"], (int, float))},
            "seconds": round(time.perf_counter() - start, 1), "environment": environment()}


def _max_rel(a: dict, b: dict) -> float:
    worst = 0.0
    for k in a.keys() | b.keys():
        x, y = a.get(k), b.get(k)
        if x is None or y is None:
            return float("inf")
        worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-300))
    return worst


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["diffusion", "r3gan_positional"])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--budget", default="tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--deterministic", action="store_true", help="also run each model with deterministic algorithms")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=VALUE[,NAME=VALUE]",
                   help="also run each model with these environment variables (e.g. ONEDNN_MAX_CPU_ISA=AVX2, "
                        "which makes oneDNN and MKL take another CPU's code path)")
    p.add_argument("--one", nargs=3, metavar=("MODEL", "DEVICE", "DETERMINISTIC"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        model, device, det = args.one
        print(json.dumps(one(model, args.budget, device, det == "1")))
        return
    rows = []
    for model in args.models:
        first = None
        runs = [(t, "0", "") for t in args.threads] + ([(args.threads[0], "1", "")] if args.deterministic else []) \
            + [(args.threads[0], "0", v) for v in args.variant]
        for threads, det, variant in runs:
            extra = dict(kv.split("=", 1) for kv in variant.split(",") if kv)
            env = {**os.environ, **{v: str(threads) for v in THREAD_VARS}, **extra, "PYTHONPATH": str(ROOT)}
            out = subprocess.run([sys.executable, __file__, "--budget", args.budget, "--one", model, args.device, det],
                                 capture_output=True, text=True, env=env, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            first = first or r
            e = r["environment"]
            rows.append(f"| {model} | {args.device} | {threads} (torch {e['torch_threads']}) | {det == '1'} | "
                        f"{variant or '—'} | "
                        f"{e['cpu']} | {r['candidate']} | {r['volume']} | {_max_rel(first['metrics'], r['metrics']):.1e} "
                        f"| {r['seconds']} |")
            print(rows[-1], flush=True)
    print("\n| model | device | threads | deterministic | other environment | CPU | candidate sha256 | volume sha256 | max metric rel. diff | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
