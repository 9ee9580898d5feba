"""Benchmark: exact DCR + NNDR (k = 2 nearest reference rows) with synth_pipeline's `nearest` engine
against scikit-learn's NearestNeighbors(algorithm="brute", n_neighbors=2, n_jobs=-1) and faiss's exact
`IndexFlatL2` (float32 distances, no re-rank), all three in the same run.

    python benchmarks/dcr.py --rows 100000 --dims 64 --threads 1     # one thread each: the faiss target

    python benchmarks/dcr.py --rows 100000 --dims 64             # query = reference size
    python benchmarks/dcr.py --rows 10000 --dims 64 --ref-rows 100000
    python benchmarks/dcr.py --scaling --dims 64                  # 10k, 100k, 1M vs 100k -> RESULTS.md

Data: seeded standard-normal float64 rows (query and reference drawn independently) with `--copies`
query rows replaced by exact copies of reference rows, so the exact-zero guarantee is exercised.

Each engine runs in its own fresh Python process (this script re-invoked with --worker) on the same
regenerated data, so one engine's memory or thread pools cannot flatter or burden the other:
  * time: wall clock (time.perf_counter) of the search alone — `nearest(q, r, k=2)`, or sklearn's
    fit + kneighbors — from the float64 arrays in memory to the (dist, idx) arrays; best of
    --repeats runs (the machine may be shared, so the minimum is the least disturbed run). The CPU
    seconds of that run (getrusage user + system) are shown too: on a machine shared with other
    jobs, wall time is what the others leave to the search, CPU time is its own cost;
  * memory: the worker's peak resident set size (resource.getrusage(RUSAGE_SELF).ru_maxrss, which
    includes the Python interpreter, the imported libraries and the input data) and the increment
    of that peak over the RSS measured just before the first search (/proc/self/statm), after a
    tiny warm-up search (64 × 4096 rows: lazy imports, thread pools): the memory the search itself
    needed. On a GPU, torch.cuda.max_memory_allocated() is reported as well.
Agreement: distances equal to 1e-6 relative (absolute 1e-6 × the median nearest distance for the
exact copies, where sklearn's ||a||² + ||b||² - 2ab formula gives ~1e-7 instead of 0); indices equal
except where sklearn's neighbour is at exactly our distance (a tie, which we break by lower index).
faiss returns float32 squared distances: its agreement is judged on indices (ties at our float64
distance allowed) and distances to 1e-3 relative. `--threads N` pins every engine to N threads (torch
intra-op, faiss OpenMP, BLAS via threadpoolctl).
The last lines printed are `ratio_vs_sklearn=R` and `ratio_vs_faiss=F`, each the peer's wall time / our
wall time (> 1: we are faster), and `ratio_vs_faiss_cpu=C`, the same on CPU seconds (on a shared
machine wall time depends on the other jobs; CPU time is each engine's own cost).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SCALING_START, SCALING_END = "<!-- scaling:start -->", "<!-- scaling:end -->"


def make_data(rows: int, ref_rows: int, dims: int, copies: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded float64 data generated in place (no temporaries larger than the arrays themselves)."""
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal((ref_rows, dims))
    query = rng.standard_normal((rows, dims))
    n_copies = min(copies, rows)
    if n_copies:
        at = rng.choice(rows, size=n_copies, replace=False)
        query[at] = reference[rng.choice(ref_rows, size=n_copies, replace=False)]
    return query, reference


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _pin_threads(n: int | None) -> None:
    if n is None:
        return
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n)


def worker(args: argparse.Namespace) -> None:
    _pin_threads(args.threads)
    query, reference = make_data(args.rows, args.ref_rows, args.dims, args.copies, args.seed)
    if args.worker == "ours":
        sys.path.insert(0, str(ROOT))
        from synth_pipeline.neighbors import nearest

        def run(q=query, r=reference):
            return nearest(q, r, k=2, block_rows=args.block_rows, block_cols=args.block_cols, backend=args.backend)
    elif args.worker == "faiss":
        import faiss

        if args.threads:
            faiss.omp_set_num_threads(args.threads)

        def run(q=query, r=reference):
            index = faiss.IndexFlatL2(r.shape[1])
            index.add(np.ascontiguousarray(r, dtype=np.float32))
            sq, i = index.search(np.ascontiguousarray(q, dtype=np.float32), 2)
            return np.sqrt(np.maximum(sq, 0)).astype(np.float64), i
    else:
        from sklearn.neighbors import NearestNeighbors

        def run(q=query, r=reference):
            return NearestNeighbors(n_neighbors=2, algorithm="brute", n_jobs=args.threads or -1).fit(r).kneighbors(q)

    info: dict = {"threads": None, "device": "cpu"}
    if args.worker == "ours":
        import torch

        from synth_pipeline.device import pick_device

        info["threads"] = torch.get_num_threads()
        info["device"] = pick_device() if args.backend != "numpy" else "cpu"
    elif args.worker == "faiss":
        import faiss

        info["threads"] = faiss.omp_get_max_threads()
    else:
        from threadpoolctl import threadpool_info

        info["threads"] = max((p.get("num_threads", 0) for p in threadpool_info()), default=None)
    run(query[:64], reference[:4096])  # warm-up: lazy imports and thread pools are not the search's memory
    base_rss = _rss_bytes()
    times, cpu = [], []
    for _ in range(args.repeats):
        u0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        dist, idx = run()
        times.append(time.perf_counter() - t0)
        u1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu.append(u1.ru_utime + u1.ru_stime - u0.ru_utime - u0.ru_stime)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    if info["device"].startswith("cuda"):
        import torch

        info["gpu_peak_bytes"] = int(torch.cuda.max_memory_allocated())
    np.savez(args.result, dist=dist, idx=idx)
    Path(args.result + ".json").write_text(json.dumps(
        {"times": times, "cpu_times": cpu, "peak_rss": peak, "base_rss": base_rss, **info}))


def run_worker(engine: str, rows: int, ref_rows: int, args: argparse.Namespace, tmp: str, timeout: float) -> dict:
    result = os.path.join(tmp, f"{engine}-{rows}-{ref_rows}.npz")
    cmd = [sys.executable, __file__, "--worker", engine, "--rows", str(rows), "--ref-rows", str(ref_rows),
           "--dims", str(args.dims), "--copies", str(args.copies), "--seed", str(args.seed),
           "--repeats", str(args.repeats), "--block-rows", str(args.block_rows), "--block-cols",
           str(args.block_cols), "--backend", args.backend, "--result", result,
           *(["--threads", str(args.threads)] if args.threads else [])]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "note": f"not run: exceeded the {timeout:.0f} s budget"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        killed = " (killed: out of memory?)" if proc.returncode in (-9, 137) else ""
        return {"ok": False, "note": f"failed{killed}: {tail[0]}"}
    out = json.loads(Path(result + ".json").read_text())
    with np.load(result) as z:
        out["dist"], out["idx"] = z["dist"], z["idx"]
    best = int(np.argmin(out["times"]))
    out["ok"], out["time"], out["cpu"] = True, out["times"][best], out["cpu_times"][best]
    out["process_s"] = time.perf_counter() - t0
    return out


def agreement(ours: dict, sk: dict, query: np.ndarray, reference: np.ndarray, rtol: float = 1e-6) -> dict:
    d, i, sd, si = ours["dist"], ours["idx"], sk["dist"], sk["idx"]
    scale = float(np.median(sd[:, 0]))
    dist_ok = np.abs(d - sd) <= rtol * np.maximum(sd, scale)
    differ = i != si
    rows, cols = np.nonzero(differ)
    # a differing index is a tie when sklearn's neighbour lies at exactly our distance (float64 direct)
    diff = query[rows] - reference[si[rows, cols]]
    their = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    ties = np.abs(their - d[rows, cols]) <= (0.0 if rtol <= 1e-6 else rtol * np.maximum(their, scale))
    return {"dist_ok": bool(dist_ok.all()), "max_rel_dist_diff": float(np.max(np.abs(d - sd) / np.maximum(sd, scale))),
            "index_mismatches": int(differ.sum()), "explained_by_ties": int(ties.sum()),
            "indices_ok": bool(ties.all()), "our_zero_copies": int((d[:, 0] == 0).sum())}


def fmt_bytes(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = re.findall(r"model name\s*:\s*(.+)", f.read())
            cpu = names[0].strip() if names else cpu
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{os.cpu_count()} CPU cores ({cpu}), {gpu}; torch {torch.__version__} "
            f"({torch.get_num_threads()} intra-op threads); load average before: "
            f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def compare(rows: int, ref_rows: int, args: argparse.Namespace, tmp: str, sklearn_budget: float,
            ours_budget: float) -> dict:
    if ours_budget <= 0:
        ours = {"ok": False, "note": "not run: its estimated time exceeds the budget"}
    else:
        ours = run_worker("ours", rows, ref_rows, args, tmp, ours_budget)
    sk = {"ok": False, "note": "skipped (--no-sklearn)"}
    if not args.no_sklearn:
        if sklearn_budget <= 0:
            sk = {"ok": False, "note": "not run: its estimated time exceeds the budget"}
        else:
            sk = run_worker("sklearn", rows, ref_rows, args, tmp, sklearn_budget)
    fa = {"ok": False, "note": "skipped (--no-faiss)"}
    if not args.no_faiss:
        fa = run_worker("faiss", rows, ref_rows, args, tmp, sklearn_budget if sklearn_budget > 0 else args.budget)
    row = {"rows": rows, "ref_rows": ref_rows, "dims": args.dims, "ours": ours, "sklearn": sk, "faiss": fa}
    q, r = make_data(rows, ref_rows, args.dims, args.copies, args.seed)
    if ours["ok"] and sk["ok"]:
        row["agreement"] = agreement(ours, sk, q, r)
        row["ratio"] = sk["time"] / ours["time"]
    if ours["ok"] and fa["ok"]:
        row["faiss_agreement"] = agreement(ours, fa, q, r, rtol=1e-3)
        row["ratio_faiss"] = fa["time"] / ours["time"]
        row["ratio_faiss_cpu"] = fa["cpu"] / ours["cpu"]
    return row


def table(results: list[dict]) -> str:
    lines = ["| query rows | reference rows | dims | ours: wall s (CPU s) | sklearn brute: wall s (CPU s) "
             "| ratio (sklearn/ours, wall) | faiss IndexFlatL2: wall s (CPU s) | ratio (faiss/ours, wall) "
             "| ours peak RSS (search Δ) | sklearn peak RSS (search Δ) | agreement | faiss agreement |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in results:
        o, s, f = r["ours"], r["sklearn"], r.get("faiss", {"ok": False, "note": "—"})

        def cell_t(e):
            return f"{e['time']:.2f} ({e['cpu']:.1f})" if e["ok"] else e["note"]

        def cell_m(e):
            if not e["ok"]:
                return "—"
            m = f"{fmt_bytes(e['peak_rss'])} ({fmt_bytes(max(0, e['peak_rss'] - e['base_rss']))})"
            return m + (f"; GPU {fmt_bytes(e['gpu_peak_bytes'])}" if "gpu_peak_bytes" in e else "")

        def cell_a(a):
            return "—" if a is None else (
                ("ok" if a["dist_ok"] and a["indices_ok"] else "**DISAGREE**")
                + f": max rel. dist diff {a['max_rel_dist_diff']:.1e}, {a['index_mismatches']} index diffs "
                  f"({a['explained_by_ties']} ties), {a['our_zero_copies']} exact-zero DCRs")

        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "—"
        ratio_f = f"{r['ratio_faiss']:.2f}" if "ratio_faiss" in r else "—"
        lines.append(f"| {r['rows']:,} | {r['ref_rows']:,} | {r['dims']} | {cell_t(o)} | {cell_t(s)} | {ratio} "
                     f"| {cell_t(f)} | {ratio_f} | {cell_m(o)} | {cell_m(s)} | {cell_a(r.get('agreement'))} "
                     f"| {cell_a(r.get('faiss_agreement'))} |")
    return "\n".join(lines)


def write_scaling(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = f"{SCALING_START}\n{text}\n{SCALING_END}"
    if SCALING_START in old and SCALING_END in old:
        new = old[: old.index(SCALING_START)] + block + old[old.index(SCALING_END) + len(SCALING_END):]
    else:
        new = old.rstrip() + "\n\n## Scaling (written by `python benchmarks/dcr.py --scaling`)\n\n" + block + "\n"
    RESULTS.write_text(new)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=10000, help="query (synthetic) rows")
    p.add_argument("--ref-rows", type=int, default=None, help="reference (train) rows; default = --rows")
    p.add_argument("--dims", type=int, default=64)
    p.add_argument("--copies", type=int, default=10, help="query rows replaced by exact reference copies")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1, help="searches per engine; the best time is reported")
    p.add_argument("--block-rows", type=int, default=1024)
    p.add_argument("--block-cols", type=int, default=16384)
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "numpy", "faiss"])
    p.add_argument("--no-sklearn", action="store_true")
    p.add_argument("--no-faiss", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="pin every engine to this many threads (default: each its own)")
    p.add_argument("--scaling", action="store_true",
                   help="10k, 100k and 1M query rows against a 100k reference; writes benchmarks/RESULTS.md")
    p.add_argument("--budget", type=float, default=600.0,
                   help="seconds allowed per engine process (scaling: an engine is skipped at a size where "
                        "its time at the previous size, scaled by the rows, predicts more)")
    p.add_argument("--worker", choices=["ours", "sklearn", "faiss"], help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.ref_rows = args.ref_rows or args.rows
    if args.worker:
        worker(args)
        return

    header = machine()
    print(f"machine: {header}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.scaling:
            results.append(compare(args.rows, args.ref_rows, args, tmp, args.budget, args.budget))
        else:
            ref_rows, per_row = 100_000, {"ours": None, "sklearn": None}
            for rows in (10_000, 100_000, 1_000_000):
                # time is linear in the query rows: skip an engine where the last size predicts an
                # overrun of the budget (per run, repeats included)
                budget = {e: args.budget if p is None or p * rows * args.repeats <= args.budget else 0.0
                          for e, p in per_row.items()}
                r = compare(rows, ref_rows, args, tmp, budget["sklearn"], budget["ours"])
                for e in per_row:
                    if r[e]["ok"]:
                        per_row[e] = r[e]["time"] / rows
                    elif budget[e] > 0:
                        per_row[e] = float("inf")  # it failed or overran: do not try a larger size
                results.append(r)
                print(table(results[-1:]).splitlines()[-1], flush=True)
    text = table(results)
    print(text)
    if args.scaling:
        write_scaling(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {header}; "
                      f"{args.dims} dims, k = 2, best of {args.repeats}.\n\n{text}")
        print(f"wrote {RESULTS}")
    bad = [r for r in results if "agreement" in r and not (r["agreement"]["dist_ok"] and r["agreement"]["indices_ok"])]
    ratios = [r["ratio"] for r in results if "ratio" in r]
    if bad:
        print("ERROR: the engines disagree (see the agreement column)")
    if not ratios:
        print("note: sklearn did not run at any size here, so there is no ratio")
        print("ratio_vs_sklearn=nan")
    else:
        # scaling mode: the ratio at the largest size where both ran
        print(f"ratio_vs_sklearn={ratios[-1]:.3f}")
    ratios_f = [r["ratio_faiss"] for r in results if "ratio_faiss" in r]
    print(f"ratio_vs_faiss={ratios_f[-1]:.3f}" if ratios_f else "ratio_vs_faiss=nan")
    ratios_fc = [r["ratio_faiss_cpu"] for r in results if "ratio_faiss_cpu" in r]
    print(f"ratio_vs_faiss_cpu={ratios_fc[-1]:.3f}" if ratios_fc else "ratio_vs_faiss_cpu=nan")
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
