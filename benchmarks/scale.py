"""Benchmark: the whole tabular release on a FLCHAIN-shaped table of N rows, the way a user runs it.

    python benchmarks/scale.py --rows 20000                        # one size, a row in SCALE.md
    python benchmarks/scale.py --rows 20000 --rows 100000 --timeout 1800   # several: growth exponents
    python benchmarks/scale.py --rows 1000000 --executor multiprocess

The table: N rows drawn with replacement (seeded) from the bundled FLCHAIN rows (the modelled columns;
futime and chapter, which it drops, are left out), each numeric measurement (kappa, lambda,
creatinine) multiplied by exp(e), e ~ Normal(0, 0.03), and rounded to 4 decimals, so rows are not
copies of each other or of FLCHAIN while every column keeps its shape; age, the categories and the
missing creatinine values are as drawn. Written as Parquet with a run config declaring the FLCHAIN
kinds (sample.yr and flc.grp categorical), target `death`, and one deliberate override,
thresholds.tstr_ratio_min 0.5 (default 0.9; recorded in the manifest as every override is): in a
resampled table the holdout rows are jittered copies of training rows, which inflates TRTR, and the
copula is refused by tstr_gate from 100k rows on (measured: exit 3), so the reports and the release
step would not run at all. The benchmark times the steps; it does not judge the generator.

The run: `python -m synth_pipeline.cli release --data <table> --config <config> --out <tmp>` in a
child process (default generator, gaussian_copula), with DAGSTER_HOME a fresh folder, so the run's
step events land in a persistent instance and are read back afterwards:
  * step time: STEP_START to STEP_SUCCESS / STEP_FAILURE of each Dagster step (wall clock);
  * peak memory: the summed resident memory of the child and every process it starts (psutil, sampled
    every 0.2 s; with the multiprocess executor the steps run in processes of their own), as RSS
    (pages shared by forked processes counted in each: an upper bound) and as PSS (shared pages split
    between the processes sharing them: the machine's actual use), and the largest single process
    (getrusage(RUSAGE_CHILDREN).ru_maxrss: only processes the run waited for, so not the step
    processes a forkserver starts);
  * per-step peak memory (multiprocess runs): the largest RSS sampled of each step's own process
    (from the same 0.2 s samples, so a spike shorter than that can be missed);
  * CPU seconds (user + system) of every process of the run, summed, and per step where the step had
    a process of its own (multiprocess): on a shared machine wall time is what the others leave to
    the run, CPU time is the run's own cost (sampled every 0.2 s, so the last fraction of a second of
    each process is missed);
  * the machine's 1-minute load average, mean over the samples, next to every figure.
Each result is appended to benchmarks/scale_runs.jsonl; SCALE.md's generated section (between the
markers) is rewritten from it: every run, and for the newest --label with two sizes or more, a
least-squares fit of log(time) on log(rows) per step (the growth exponent) and the 10M-row projection
t(N_max) × (10M / N_max)^exponent, the same for peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCALE_MD = Path(__file__).resolve().parent / "SCALE.md"
RUNS = Path(__file__).resolve().parent / "scale_runs.jsonl"
START, END = "<!-- scale:start -->", "<!-- scale:end -->"
JITTERED = ("kappa", "lambda", "creatinine")
PROJECT_ROWS = 10_000_000
CONFIG = {"target": "death", "name": "flchain_scale",
          "column_kinds": {"age": "integer", "sex": "categorical", "sample.yr": "categorical", "kappa": "numeric",
                           "lambda": "numeric", "flc.grp": "categorical", "creatinine": "numeric",
                           "mgus": "categorical", "death": "categorical"},
          "thresholds": {"tstr_ratio_min": 0.5}}


def make_table(rows: int, seed: int, path: Path) -> None:
    """N FLCHAIN-shaped rows (see the module docstring) as Parquet at `path`."""
    import pandas as pd

    sys.path.insert(0, str(ROOT))
    from synth_pipeline.data import load_dataset

    flchain = load_dataset("flchain")
    base = flchain.raw[[c.name for c in flchain.schema.columns]]
    rng = np.random.default_rng(seed)
    table = base.iloc[rng.integers(0, len(base), size=rows)].reset_index(drop=True)
    for c in JITTERED:
        table[c] = (table[c] * np.exp(rng.normal(0.0, 0.03, size=rows))).round(4)
    table["age"] = table["age"].astype("Int64")
    pd.DataFrame(table).to_parquet(path, index=False)


def _cpu_seconds(proc, seen: dict[int, float]) -> None:
    """Record the CPU seconds (user + system) so far of `proc` and each descendant, by pid."""
    import psutil

    try:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                seen[p.pid] = t.user + t.system
            except psutil.Error:
                pass
    except psutil.Error:
        pass


def _tree_memory(proc, peaks: dict[int, int]) -> tuple[int, int]:
    """(summed RSS, summed PSS) of `proc` and all its descendants; `peaks` keeps each process's
    largest RSS seen, by pid. Forked step processes share the forkserver's pages (imported
    libraries): RSS counts them once per process, PSS splits them."""
    import psutil

    rss = pss = 0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                full = p.memory_full_info()
                rss, pss = rss + full.rss, pss + getattr(full, "pss", full.rss)
                peaks[p.pid] = max(peaks.get(p.pid, 0), full.rss)
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return rss, pss


def step_times(dagster_home: Path) -> tuple[str | None, dict[str, float], dict[str, str], dict[str, int]]:
    """(run id, {step: seconds}, {step: status}, {step: its process id (multiprocess runs)}) of the one
    run in this instance."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        if not runs:
            return None, {}, {}, {}
        run = runs[0]
        start, seconds, status, pids = {}, {}, {}, {}
        for rec in instance.all_logs(run.run_id):
            ev = rec.dagster_event
            if ev is None or not ev.step_key:
                continue
            if ev.event_type_value == "STEP_WORKER_STARTED":
                pid = ev.event_specific_data.metadata.get("pid") if ev.event_specific_data else None
                if pid is not None:
                    pids[ev.step_key] = int(pid.value)
            if ev.event_type_value == "STEP_START":
                start[ev.step_key] = rec.timestamp
            elif ev.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and ev.step_key in start:
                seconds[ev.step_key] = round(rec.timestamp - start[ev.step_key], 2)
                status[ev.step_key] = "ok" if ev.event_type_value == "STEP_SUCCESS" else "failed"
        return run.run_id, seconds, status, pids


def _auto_choice(rows: int) -> str:
    sys.path.insert(0, str(ROOT))
    from synth_pipeline.cli import choose_executor

    return choose_executor("auto", rows)


def run_once(rows: int, *, seed: int, timeout: float, executor: str | None, label: str, keep: Path | None) -> dict:
    import psutil

    tmp = Path(tempfile.mkdtemp(prefix="synth-scale-"))
    try:
        data, cfg, home = tmp / "flchain_scale.parquet", tmp / "config.json", tmp / "dagster_home"
        t0 = time.perf_counter()
        make_table(rows, seed, data)
        make_seconds = time.perf_counter() - t0
        cfg.write_text(json.dumps({**CONFIG, "seed": seed}))
        home.mkdir()
        env = {**os.environ, "DAGSTER_HOME": str(home), "SYNTH_WORK_DIR": str(tmp / "work"),
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "SYNTH_PROGRESS": "0"}
        cmd = [sys.executable, "-m", "synth_pipeline.cli", "release", "--data", str(data), "--config", str(cfg),
               "--out", str(tmp / "releases")]
        if executor:
            cmd += ["--executor", executor]
        loads, peak, peak_pss, cpu, pid_peaks = [], 0, 0, {}, {}
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ps = psutil.Process(proc.pid)
        timed_out = False
        while proc.poll() is None:
            rss, pss = _tree_memory(ps, pid_peaks)
            peak, peak_pss = max(peak, rss), max(peak_pss, pss)
            _cpu_seconds(ps, cpu)
            loads.append(os.getloadavg()[0])
            if time.perf_counter() - start > timeout:
                proc.terminate()  # the CLI's SIGTERM cleanup removes intermediates and any partial release
                timed_out = True
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                break
            time.sleep(0.2)
        output = proc.communicate()[0]
        wall = time.perf_counter() - start
        largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        run_id, steps, status, pids = step_times(home)
        published = "published" in output and proc.returncode == 0
        if keep is not None and published:
            shutil.copytree(tmp / "releases", keep / f"rows{rows}", dirs_exist_ok=True)
        return {
            "rows": rows, "label": label, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "executor": executor or f"{_auto_choice(rows)} (auto)", "exit_code": proc.returncode, "timed_out": timed_out,
            "outcome": output.strip().splitlines()[-1][:300] if output.strip() else "",
            "wall_seconds": round(wall, 1), "make_table_seconds": round(make_seconds, 1),
            "peak_rss_tree_bytes": peak, "peak_pss_tree_bytes": peak_pss, "largest_process_rss_bytes": largest,
            "load_mean": round(float(np.mean(loads)), 2) if loads else None,
            "load_max": round(float(np.max(loads)), 2) if loads else None,
            "cpus": os.cpu_count(), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "run_id": run_id, "steps": steps, "step_status": status,
            "cpu_seconds": round(sum(cpu.values()), 1),
            "step_cpu_seconds": {k: round(cpu[p], 1) for k, p in pids.items() if p in cpu},
            "step_peak_rss_bytes": {k: pid_peaks[p] for k, p in pids.items() if p in pid_peaks},
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fit(runs: list[dict]) -> tuple[dict[str, tuple[float, float, list[int]]], dict[str, float]]:
    """Per step (wall and, where measured, CPU and its process's peak RSS), 'whole run' and 'peak RSS' /
    'peak PSS': (exponent, projected value at PROJECT_ROWS, the sizes fitted). Only steps that
    succeeded are fitted. Memory is also fitted as fixed + per-row (least squares), projected to
    PROJECT_ROWS in the second dict: a process's imports are a large fixed part that a power law
    fitted on small sizes reads as slow growth, while the tables it holds grow linearly."""
    by_size = {r["rows"]: r for r in runs}  # the newest run of each size
    sizes = sorted(by_size)
    series: dict[str, list[tuple[int, float]]] = {}
    for n in sizes:
        r = by_size[n]
        for step, s in r["steps"].items():
            if r.get("step_status", {}).get(step, "ok") == "ok":  # an interrupted step's time is no measurement
                series.setdefault(step, []).append((n, max(s, 0.01)))
        for step, s in r.get("step_cpu_seconds", {}).items():
            if r.get("step_status", {}).get(step) == "ok":
                series.setdefault(f"{step} (CPU)", []).append((n, max(s, 0.01)))
        for step, b in r.get("step_peak_rss_bytes", {}).items():
            if r.get("step_status", {}).get(step) == "ok":
                series.setdefault(f"peak RSS: {step}", []).append((n, b))
        if r["exit_code"] in (0, 3) and not r["timed_out"]:
            series.setdefault("whole run", []).append((n, r["wall_seconds"]))
            if r.get("cpu_seconds"):
                series.setdefault("whole run (CPU)", []).append((n, r["cpu_seconds"]))
            series.setdefault("peak RSS", []).append((n, r["peak_rss_tree_bytes"]))
            if r.get("peak_pss_tree_bytes"):
                series.setdefault("peak PSS", []).append((n, r["peak_pss_tree_bytes"]))
    out, linear = {}, {}
    for step, points in series.items():
        if len(points) < 2:
            continue
        x, y = np.log([p[0] for p in points]), np.log([p[1] for p in points])
        slope = float(np.polyfit(x, y, 1)[0])
        n_max, v_max = points[-1]
        out[step] = (slope, v_max * (PROJECT_ROWS / n_max) ** slope, [p[0] for p in points])
        if step.startswith("peak"):
            per_row, fixed = np.polyfit([p[0] for p in points], [p[1] for p in points], 1)
            linear[step] = float(fixed + per_row * PROJECT_ROWS)
    return out, linear


def _gb(b: float) -> str:
    return f"{b / 2**30:.2f} GiB"


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def render(runs: list[dict]) -> str:
    lines = [START, "", "Generated by `benchmarks/scale.py` from `benchmarks/scale_runs.jsonl`; do not edit by hand.", "",
             "| date | label | executor | rows | outcome | whole run (CPU) | peak RSS, all processes (PSS) | largest process | "
             "load (mean / max, 2 cores) | slowest steps (wall) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        slow = ", ".join(f"{k} {v:.0f} s" for k, v in sorted(r["steps"].items(), key=lambda kv: -kv[1])[:4])
        outcome = "timed out" if r["timed_out"] else {0: "published", 3: "refused"}.get(r["exit_code"], f"exit {r['exit_code']}")
        outcome += f" ({r['note']})" if r.get("note") else ""
        lines.append(f"| {r['date']} | {r['label']} | {r['executor']} | {r['rows']:,} | {outcome} | "
                     f"{_duration(r['wall_seconds'])}{' (' + _duration(r['cpu_seconds']) + ')' if r.get('cpu_seconds') else ''} | "
                     f"{_gb(r['peak_rss_tree_bytes'])}"
                     f"{' (' + _gb(r['peak_pss_tree_bytes']) + ')' if r.get('peak_pss_tree_bytes') else ''} | "
                     f"{_gb(r['largest_process_rss_bytes'])} | {r['load_mean']} / {r['load_max']} | {slow} |")
    per_step = [r for r in runs if r.get("step_peak_rss_bytes")]
    if per_step:
        lines += ["", "Peak RSS of each step's own process (multiprocess runs; the five largest):", "",
                  "| date | label | rows | steps by peak RSS |", "|---|---|---|---|"]
        for r in per_step:
            top = sorted(r["step_peak_rss_bytes"].items(), key=lambda kv: -kv[1])[:5]
            shown = ", ".join(f"{k} {_gb(v)}" for k, v in top)
            lines.append(f"| {r['date']} | {r['label']} | {r['rows']:,} | {shown} |")
    if runs:
        label = runs[-1]["label"]
        same = [r for r in runs if r["label"] == label]
        fits, linear = fit(same)
        sizes = sorted({r["rows"] for r in same})
        lines += ["", f"Growth exponents (label `{label}`, sizes {', '.join(f'{n:,}' for n in sizes)}; time ∝ rows^b, "
                      f"least squares on log–log) and the projection to {PROJECT_ROWS:,} rows:", ""]
        if not fits:
            lines.append("(one size only: no fit)")
        else:
            lines += ["| step | sizes fitted | b | projected at 10M rows |", "|---|---|---|---|"]
            for step, (b, v, sizes_used) in sorted(fits.items(), key=lambda kv: (kv[0].startswith("peak"), -kv[1][1])):
                shown = (f"{_gb(v)}; fixed + per-row: {_gb(linear[step])}" if step.startswith("peak")
                         else _duration(v))
                lines.append(f"| {step} | {', '.join(f'{n // 1000}k' for n in sizes_used)} | {b:.2f} | {shown} |")
    return "\n".join(lines + ["", END])


def write_markdown(runs: list[dict]) -> None:
    text = SCALE_MD.read_text() if SCALE_MD.exists() else f"# Scale\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    SCALE_MD.write_text(head + render(runs) + tail)


def load_runs() -> list[dict]:
    return [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()] if RUNS.exists() else []


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, action="append", required=False, help="table size; repeat for several")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3600, help="seconds per run before SIGTERM (recorded as timed out)")
    p.add_argument("--executor", choices=("in_process", "multiprocess"), help="the CLI's --executor (default: auto)")
    p.add_argument("--label", help="groups runs for the fit (default: the git commit)")
    p.add_argument("--keep", type=Path, help="copy each published release here")
    p.add_argument("--render-only", action="store_true", help="rewrite SCALE.md from scale_runs.jsonl, run nothing")
    args = p.parse_args()
    if not args.render_only:
        label = args.label or subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                             capture_output=True, text=True).stdout.strip()
        for rows in args.rows or ():
            r = run_once(rows, seed=args.seed, timeout=args.timeout, executor=args.executor, label=label, keep=args.keep)
            with RUNS.open("a") as f:
                f.write(json.dumps(r) + "\n")
            print(json.dumps({k: v for k, v in r.items() if k != "step_status"}, indent=1), flush=True)
            write_markdown(load_runs())
    write_markdown(load_runs())
    return 0


if __name__ == "__main__":
    sys.exit(main())
