"""Benchmark: the whole evaluation of a 30k-row table, as the pipeline runs it, step by step.

    .venv/bin/python benchmarks/evaluation.py                 # 30k rows, default config (1000 attacks)
    .venv/bin/python benchmarks/evaluation.py --rows 30000 --repeats 2 --no-breakdown

The table (stated in the output): no bundled real table has 30k rows (FLCHAIN has 7874 modelled
rows), so the "real" table is 30k rows sampled from a Gaussian copula fitted on all of FLCHAIN
(seed 0), conformed to FLCHAIN's schema (4 numeric, 5 categorical columns incl. the target). It is
split 70/30 with the pipeline's stratified split (21k train / 9k holdout), a Gaussian copula is
fitted on train and samples a 21k-row candidate. Building the table is not timed as evaluation.

Timed steps (synth_pipeline.evaluation, RunConfig() defaults: seed 0, 1000 linkability attacks):
the three gates (run_gate: dcr_gate, linkability_gate, tstr_gate) and the three reports (fidelity,
utility_metrics, privacy_metrics), each its own wall-clock time (time.perf_counter), in that order,
in one process; the total is their sum, which is what one pipeline run spends (the Dagster checks
and report assets each call one of them). With --repeats N each step is run N times and its
minimum is kept (the machine is shared; the minimum is the least disturbed run). The load average
before and after is printed, so the numbers can be read against it. --breakdown (default) times
the parts of the reports once more, to show where the dominating step spends its time.
The last line is `total_seconds=T`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from synth_pipeline import preprocess  # noqa: E402
from synth_pipeline.config import RunConfig  # noqa: E402
from synth_pipeline.data import load_dataset  # noqa: E402
from synth_pipeline.schema import conform  # noqa: E402

LIMIT_S = 120.0


def _copula(table: pd.DataFrame, schema, n: int, seed: int) -> pd.DataFrame:
    from synth_pipeline.generators import make_generator

    gen = make_generator("gaussian_copula")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen.fit(table, schema, target=schema.target, seed=seed)
        return gen.sample(n, seed=seed).reset_index(drop=True)


def build(rows: int, seed: int):
    lt = load_dataset("flchain")
    real = preprocess.model_table(lt.raw, lt.schema)
    big = conform(_copula(real, lt.schema, rows, seed), lt.schema)
    big = big[big[lt.schema.target].notna()].reset_index(drop=True)
    s = preprocess.split(big, lt.schema, holdout_fraction=0.3, seed=seed)
    cand = _copula(s.train, lt.schema, len(s.train), seed)
    note = (f"'real' table: {len(big)} rows sampled from a Gaussian copula fitted on all {len(real)} modelled FLCHAIN "
            f"rows (seed {seed}); split 70/30 stratified -> train {len(s.train)} / holdout {len(s.holdout)}; candidate: "
            f"Gaussian copula fitted on train, {len(cand)} rows; {len(lt.schema.names)} columns "
            f"({len(lt.schema.numeric)} numeric, {len(lt.schema.categorical)} categorical)")
    return s.train, s.holdout, cand, lt.schema, note


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) / {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=30_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--breakdown", action=argparse.BooleanOptionalAction, default=True)
    a = p.parse_args()

    from synth_pipeline import evaluation as ev

    cfg = RunConfig(seed=a.seed)
    t0 = time.perf_counter()
    train, holdout, cand, schema, note = build(a.rows, a.seed)
    print(f"# {note}")
    print(f"# building the table and candidate (not counted): {time.perf_counter() - t0:.1f} s")
    print(f"# config: seed {cfg.seed}, link_attacks {cfg.link_attacks}; before: {_load()}", flush=True)

    steps = {
        "gate dcr_gate": lambda: ev.run_gate("dcr_gate", cand, train, holdout, schema, cfg),
        "gate linkability_gate": lambda: ev.run_gate("linkability_gate", cand, train, holdout, schema, cfg),
        "gate tstr_gate": lambda: ev.run_gate("tstr_gate", cand, train, holdout, schema, cfg),
        "report fidelity": lambda: ev.fidelity(cand, train, holdout, schema, cfg),
        "report utility_metrics": lambda: ev.utility_metrics(cand, train, holdout, schema, cfg),
        "report privacy_metrics": lambda: ev.privacy_metrics(cand, train, holdout, schema, cfg),
    }
    times: dict[str, list[float]] = {k: [] for k in steps}
    cpu: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(a.repeats):
        for name, fn in steps.items():
            t, c = time.perf_counter(), time.process_time()
            out = fn()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
            gate = getattr(out, "passed", None)
            print(f"# {name}: {times[name][-1]:.1f} s wall, {cpu[name][-1]:.1f} s CPU"
                  + (f" (passed={gate})" if gate is not None else ""), flush=True)
    best = {k: min(v) for k, v in times.items()}
    best_cpu = {k: min(v) for k, v in cpu.items()}
    total = sum(best.values())
    print(f"# after: {_load()}")
    print()
    print("| step | wall seconds | share of total | CPU seconds (all threads) |" + (" all runs (wall) |" if a.repeats > 1 else ""))
    print("|---|---|---|---|" + ("---|" if a.repeats > 1 else ""))
    for name, sec in sorted(best.items(), key=lambda kv: -kv[1]):
        runs = " " + ", ".join(f"{x:.1f}" for x in times[name]) + " |" if a.repeats > 1 else ""
        print(f"| {name} | {sec:.1f} | {sec / total:.0%} | {best_cpu[name]:.1f} |{runs}")
    print(f"| **total** | **{total:.1f}** | 100% | {sum(best_cpu.values()):.1f} |" + (" |" if a.repeats > 1 else ""))
    top = max(best, key=best.get)
    print()
    print(f"dominating step: {top} ({best[top]:.1f} s, {best[top] / total:.0%} of the total)")
    print(f"{'within' if total <= LIMIT_S else 'OVER'} the {LIMIT_S:.0f} s budget")

    if a.breakdown:
        from synth_pipeline.metrics import fidelity as fid
        from synth_pipeline.metrics.privacy import dcr_metrics, linkability
        from synth_pipeline.metrics.utility import augmentation, tstr

        parts = {
            "fidelity: column_shapes": lambda: fid.column_shapes(train, cand, schema),
            "fidelity: column_pair_trends": lambda: fid.column_pair_trends(train, cand, schema, seed=cfg.seed),
            "fidelity: missing_rates": lambda: fid.missing_rates(train, cand, schema),
            "fidelity: c2st": lambda: fid.c2st(train, cand, schema, seed=cfg.seed),
            "utility: tstr (3 families x 2 fits + bootstrap)": lambda: tstr(train, holdout, cand, schema, seed=cfg.seed),
            "utility: augmentation (3 families x 2 fits + bootstrap)": lambda: augmentation(train, holdout, cand, schema, seed=cfg.seed),
            "privacy: dcr_metrics": lambda: dcr_metrics(train, holdout, cand, schema, seed=cfg.seed),
            "privacy: linkability": lambda: linkability(train, holdout, cand, schema, n_attacks=cfg.link_attacks, seed=cfg.seed),
        }
        try:  # report-only anonymeter attacks, when privacy_metrics includes them
            from synth_pipeline.metrics import attacks

            parts["privacy: singling_out"] = lambda: attacks.singling_out(train, holdout, cand, schema, seed=cfg.seed)
            parts["privacy: inference"] = lambda: attacks.inference(train, holdout, cand, schema, seed=cfg.seed)
        except ImportError:
            pass
        print()
        print("breakdown of the reports (one run each, same process):")
        print()
        print("| part | wall seconds | CPU seconds |")
        print("|---|---|---|")
        for name, fn in parts.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            print(f"| {name} | {time.perf_counter() - t:.1f} | {time.process_time() - c:.1f} |", flush=True)
        from threadpoolctl import threadpool_limits

        from synth_pipeline.metrics import utility as ut

        lab, hold = ut._labelled(train, schema), ut._labelled(holdout, schema)
        cat = [c for c in schema.categorical if c != schema.target]
        num = [c for c in schema.numeric if c != schema.target]
        for family, make in ut.FAMILIES.items():
            t, c = time.perf_counter(), time.process_time()
            with threadpool_limits(limits=ut.MODEL_THREADS):
                make(cat, num, cfg.seed).fit(lab.x, lab.y).predict_proba(hold.x)
            print(f"| utility: one {family} fit on train + predict holdout (fitted 2x in tstr_gate, 4x in the utility report) | "
                  f"{time.perf_counter() - t:.1f} | {time.process_time() - c:.1f} |", flush=True)
        print(f"\n# after breakdown: {_load()}")
    print(f"total_seconds={total:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
