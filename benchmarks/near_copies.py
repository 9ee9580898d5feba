"""Benchmark: the near-copy filter's privacy / utility trade-off (issue 14, part 4).

    nice .venv/bin/python benchmarks/near_copies.py --raw /tmp/near.json          # 3 tables, seeds 0 1 2, full budget
    .venv/bin/python benchmarks/near_copies.py --from-raw a.json b.json           # render only

For each (table, seed): the table is loaded and split 70/30 as in benchmarks/generators.py (split
seed = fit seed = sample seed); each generator (default diffusion, tvae, gaussian_copula, at their
defaults) is fitted once on train and samples len(train) rows once. Each near_copy_quantile q is then
applied to that same sample by the pipeline's filter (copies.filter_rare_copies with
near_copies.distance_floor(train, schema, q); q = 0 is the rare-copy filter alone, what runs today),
and the filtered rows are judged as the pipeline does (evaluation.run_gate with RunConfig(seed),
default thresholds): dcr_gate (DCR share, memorisation), tstr_gate (TSTR/TRTR), fidelity_gate
(column shapes / pair trends against the real holdout's), and with --linkability linkability_gate.
Recorded per row: τ, rows flagged as near copies, redrawn, removed, the cohort check's verdict.

Prints the per-q table and the target check (--md writes them) and draws the trade-off plot (--png):
DCR share against TSTR/TRTR per table, one curve per generator, a point per q (x where the cohort check
refused a seed). --rival-dcr gives TVAE's unfiltered DCR share per table when TVAE is not run here. The rows go to --raw after every
(table, seed); --from-raw renders from several files (runs split over processes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import numpy as np  # noqa: E402

from generators import TABLES, _metric, load_table  # noqa: E402
from synth_pipeline import preprocess  # noqa: E402
from synth_pipeline.config import RunConfig  # noqa: E402
from synth_pipeline.copies import filter_rare_copies, generator_redraw  # noqa: E402
from synth_pipeline.generators import make_generator  # noqa: E402
from synth_pipeline.near_copies import distance_floor  # noqa: E402

QUANTILES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)
GENERATORS = ("diffusion", "tvae", "gaussian_copula")


def judge(synth, train, holdout, schema, seed: int, gates: tuple[str, ...]) -> dict:
    from synth_pipeline import evaluation as ev

    cfg = RunConfig(seed=seed)
    out: dict = {"gates": {}}
    for g in gates:
        res = ev.run_gate(g, synth, train, holdout, schema, cfg)
        out["gates"][g] = bool(res.passed)
        if g == "dcr_gate":
            out["dcr_share"], out["memorisation"] = _metric(res, "dcr_share"), _metric(res, "memorisation_rate")
        elif g == "tstr_gate":
            out["tstr_ratio"] = _metric(res, "tstr_ratio")
        elif g == "fidelity_gate":
            out["shapes"], out["trends"] = _metric(res, "column_shapes"), _metric(res, "column_pair_trends")
        elif g == "linkability_gate":
            out["linkability"] = _metric(res, "linkability")
    return out


def run_split(table: str, lt, seed: int, generators, quantiles: dict[str, list[float]], gates) -> list[dict]:
    real = preprocess.model_table(lt.raw, lt.schema)
    s = preprocess.split(real, lt.schema, holdout_fraction=0.3, seed=seed)
    train, holdout, schema = s.train, s.holdout, lt.schema
    floors = {q: distance_floor(train, schema, q) for q in sorted({q for qs in quantiles.values() for q in qs})}
    rows = []
    for g in generators:
        base = {"table": table, "seed": seed, "generator": g}
        try:
            gen = make_generator(g)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = time.perf_counter()
                gen.fit(train, schema, target=schema.target, seed=seed)
                fit_s = time.perf_counter() - t
                synth = gen.sample(len(train), seed=seed)
        except Exception as e:  # noqa: BLE001 - one failure must not stop the benchmark
            rows.append({**base, "error": f"{type(e).__name__}: {e}"})
            continue
        for q in quantiles[g]:
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                filtered, res = filter_rare_copies(synth, train=train, schema=schema, k=5,
                                                   redraw=generator_redraw(gen, schema.target), seed=seed,
                                                   near=floors[q])
                filter_s = time.perf_counter() - t
                row = {**base, "q": q, "error": None, "fit_s": fit_s, "filter_s": filter_s, "rows": len(synth),
                       "tau": floors[q].threshold if floors[q] else 0.0, "near_copies": res.near_copies,
                       "rare_copies": res.rare_copies, "redrawn": res.redrawn, "removed": res.removed,
                       "cohort_ok": res.passed, **judge(filtered, train, holdout, schema, seed, gates)}
            rows.append(row)
            print(f"[{time.strftime('%H:%M:%S')}] {table} s{seed} {g} q={q}: dcr {row.get('dcr_share')} "
                  f"tstr {row.get('tstr_ratio')} near {res.near_copies} removed {res.removed} "
                  f"cohort {res.passed} ({filter_s:.1f} s filter)", flush=True)
    return rows


def _mean(rows, key):
    v = [r[key] for r in rows if r.get(key) is not None]
    return (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v)) if v else (None, None, 0)


def table_md(rows, tables, generators, quantiles) -> list[str]:
    L = ["| table | generator | q | τ | near copies found (share) | redrawn / removed | cohort ok | DCR share | "
         "memorisation | TSTR/TRTR | column shapes | pair trends | dcr / tstr / fidelity / linkability gates pass |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in tables:
        for g in generators:
            for q in quantiles:
                rs = [r for r in rows if r["table"] == t and r["generator"] == g and r.get("q") == q and not r["error"]]
                if not rs:
                    continue
                n = len(rs)
                tau, near = _mean(rs, "tau")[0], _mean(rs, "near_copies")[0]
                share = near / _mean(rs, "rows")[0]
                cells = []
                for key, nd in (("dcr_share", 3), ("memorisation", 3), ("tstr_ratio", 3), ("shapes", 3), ("trends", 3)):
                    m, sd, _ = _mean(rs, key)
                    cells.append("—" if m is None else f"{m:.{nd}f} ± {sd:.{nd}f}")
                passes = {k: (f"{sum(r['gates'][k] for r in rs)}/{n}" if all(k in r["gates"] for r in rs) else "—")
                          for k in ("dcr_gate", "tstr_gate", "fidelity_gate", "linkability_gate")}
                L.append(f"| {t} | {g} | {q:g} | {tau:.3f} | {near:.0f} ({share:.3f}) | "
                         f"{_mean(rs, 'redrawn')[0]:.0f} / {_mean(rs, 'removed')[0]:.1f} | "
                         f"{sum(r['cohort_ok'] for r in rs)}/{n} | " + " | ".join(cells) + " | "
                         + " / ".join(passes.values()) + " |")
    return L


def summary_md(rows, tables, quantiles, rival: str = "tvae", given: dict[str, float] | None = None) -> list[str]:
    """Per q: diffusion's mean DCR share per table against the rival's unfiltered (q = 0) share (from
    the rows, else `given`), and diffusion's TSTR/TRTR mean over the tables."""
    L = ["| q | " + " | ".join(f"{t} DCR share (diffusion vs {rival} q=0)" for t in tables)
         + " | mean TSTR/TRTR (diffusion) | cohort check passed (all tables, seeds) | every gate run passed | "
         "targets met, releasable |",
         "|---" * (len(tables) + 5) + "|"]
    for q in quantiles:
        cells, ok, ratios = [], True, []
        runs = [r for r in rows if r["generator"] == "diffusion" and r.get("q") == q and not r["error"]]
        cohort = sum(bool(r["cohort_ok"]) for r in runs)
        gated = sum(all(r["gates"].values()) for r in runs)  # every gate the run judged (dcr, tstr, fidelity, linkability)
        for t in tables:
            d = _mean([r for r in rows if r["table"] == t and r["generator"] == "diffusion" and r.get("q") == q and not r["error"]], "dcr_share")[0]
            v = _mean([r for r in rows if r["table"] == t and r["generator"] == rival and r.get("q") == 0.0 and not r["error"]], "dcr_share")[0]
            v = (given or {}).get(t) if v is None else v
            r_ = _mean([r for r in rows if r["table"] == t and r["generator"] == "diffusion" and r.get("q") == q and not r["error"]], "tstr_ratio")[0]
            if d is None or v is None or r_ is None:
                cells.append("—"); ok = False; continue
            ratios.append(r_)
            ok &= d <= v
            cells.append(f"{d:.3f} vs {v:.3f} {'≤' if d <= v else '>'}")
        avg = float(np.mean(ratios)) if ratios else float("nan")
        ok &= avg >= 0.97
        releasable = cohort == gated == len(runs)
        L.append(f"| {q:g} | " + " | ".join(cells) + f" | {avg:.3f} | {cohort}/{len(runs)} | {gated}/{len(runs)} | "
                 f"{'yes' if ok and releasable else ('targets only' if ok else 'no')} |")
    return L


def plot(path: Path, rows, tables, generators, quantiles, given: dict[str, float] | None = None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(5.5 * len(tables), 4.5), squeeze=False)
    for ax, t in zip(axes[0], tables):
        for i, g in enumerate(generators):
            pts = []
            for q in quantiles:
                rs = [r for r in rows if r["table"] == t and r["generator"] == g and r.get("q") == q and not r["error"]]
                x, y = _mean(rs, "dcr_share")[0], _mean(rs, "tstr_ratio")[0]
                if x is not None and y is not None:
                    pts.append((x, y, q, all(r["cohort_ok"] for r in rs)))
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color=f"C{i}", label=g)
            for x, y, q, ok in pts:
                ax.scatter(x, y, marker="o" if ok else "x", s=30, color=f"C{i}")
                ax.annotate(f"{q:g}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points", color=f"C{i}")
        if (given or {}).get(t) is not None:
            ax.axvline(given[t], ls="--", c="grey", label="tvae (q = 0, issue 4 run)")
        ax.set_title(t); ax.set_xlabel("DCR share (lower = further from train)"); ax.set_ylabel("TSTR / TRTR AUROC")
        ax.legend(fontsize=8)
    fig.suptitle("Near-copy filter: each point one near_copy_quantile q, mean over seeds "
                 "(x: the cohort check refused at least one seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tables", nargs="+", default=list(TABLES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--generators", nargs="+", default=list(GENERATORS))
    p.add_argument("--quantiles", nargs="+", type=float, default=list(QUANTILES))
    p.add_argument("--rival-quantiles", nargs="+", type=float, default=None,
                   help="the quantiles for the generators other than diffusion (default: --quantiles)")
    p.add_argument("--rival-dcr", nargs="+", default=[], metavar="TABLE=SHARE",
                   help="TVAE's unfiltered mean DCR share per table when TVAE is not run here")
    p.add_argument("--no-fidelity", action="store_true", help="skip fidelity_gate (column shapes / pair trends)")
    p.add_argument("--linkability", action="store_true", help="also run linkability_gate (anonymeter, slow)")
    p.add_argument("--raw", default=None, help="write the rows as JSON here after every (table, seed)")
    p.add_argument("--from-raw", nargs="+", default=None, help="do not run: render from these JSON files")
    p.add_argument("--md", default=None, help="write the tables (Markdown) here")
    p.add_argument("--png", default=None, help="write the trade-off plot here")
    a = p.parse_args()
    gates = (("dcr_gate", "tstr_gate") + (() if a.no_fidelity else ("fidelity_gate",))
             + (("linkability_gate",) if a.linkability else ()))
    per_gen = {g: a.quantiles if g == "diffusion" or a.rival_quantiles is None else a.rival_quantiles
               for g in a.generators}
    rows: list[dict] = []
    if a.from_raw:
        latest = {}  # a later file's row for the same (table, seed, generator, q) replaces an earlier one
        for f in a.from_raw:
            latest.update({(r["table"], r["seed"], r["generator"], r.get("q")): r for r in json.loads(Path(f).read_text())})
        rows = list(latest.values())
    else:
        print(f"pid {os.getpid()}, torch threads: set OMP_NUM_THREADS=1 outside", flush=True)
        for seed in a.seeds:
            for t in a.tables:
                rows += run_split(t, load_table(t), seed, a.generators, per_gen, gates)
                if a.raw:
                    Path(a.raw).write_text(json.dumps(rows, indent=1, default=str))
    tables = [t for t in a.tables if any(r["table"] == t for r in rows)]
    qs = sorted({r["q"] for r in rows if r.get("q") is not None})
    given = {k: float(v) for k, v in (x.split("=") for x in a.rival_dcr)}
    md = table_md(rows, tables, a.generators, qs) + [""] + summary_md(rows, tables, qs, given=given)
    print("\n".join(md))
    if a.md:
        Path(a.md).write_text("\n".join(md) + "\n")
    if a.png:
        plot(Path(a.png), rows, tables, a.generators, qs, given)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
