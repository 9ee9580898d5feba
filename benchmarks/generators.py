"""Benchmark: every registered generator on the bundled real clinical tables (issue 4).

    .venv/bin/python benchmarks/generators.py                                  # all tables, seeds 0 1 2, full budget
    .venv/bin/python benchmarks/generators.py --budget quick --seeds 0 --tables flchain actg175

For each (table, seed, generator): the table is loaded (synth_pipeline.data.load_dataset), reduced
to its modelled columns (preprocess.model_table) and split 70/30 (preprocess.split, seed = seed);
the generator (make_generator(name, **params)) is fitted on train (target = schema.target, seed)
and samples len(train) rows (seed). Measured:

* fit / sample wall time (time.perf_counter);
* peak memory: the increase of the process's peak resident set size (resource.getrusage
  ru_maxrss, KiB on Linux) over fit + sample. All runs share one process, so this is a
  high-water-mark delta: a generator that stays below an earlier generator's peak reads ~0.
  It is a lower bound of its own peak, not an isolated measurement (tracemalloc was not used: it
  misses torch's allocations and slows the fits);
* the three gates with RunConfig(seed=seed) and synth_pipeline.evaluation.run_gate:
  dcr_gate ("dcr_share"), linkability_gate ("linkability"), tstr_gate ("tstr_ratio" = best
  TSTR AUROC / best TRTR AUROC), fidelity_gate (column shapes / pair trends against the real-holdout
  floor, issue 14); "publishes" = these gates and the copy filter pass (rows from before fidelity_gate
  existed have no fidelity verdict);
* fidelity_metrics(train, synthetic, schema, seed): shape error = 1 - column_shapes, trend
  error = 1 - column_pair_trends, C2ST AUROC;
* the same shape / trend error and C2ST before the copy filter (`*_unfiltered`): the model's own
  fidelity, apart from what the filter's redraws change;
* `rare_copies`: sampled rows equal to a training row fewer than k (5) training rows share, which
  the pipeline's copy filter (synth_pipeline.copies) redraws or removes before the gates, as here.

Once per (table, seed) the real holdout itself is scored like a synthetic table (shape / trend
error, C2ST against train): the sampling floor, what an independent real sample of the population
reaches. Its errors are those of a 30% sample against the 70% train; for a synthetic table of
len(train) rows they scale by sqrt(2/n_train) / sqrt(1/n_train + 1/n_holdout) (the standard error
of a two-sample statistic), which the report shows as "floor at n_train".

A (table, seed, generator) that raises gets a row saying so; the run goes on. The Markdown report
(--out) is rewritten after every run, so a partial run leaves its results; the raw rows go to a
JSON file with --raw (--from-raw renders one report from several, e.g. runs split over processes), and a plot (TSTR ratio vs DCR share, one panel per table) next to it as .png.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from synth_pipeline import preprocess  # noqa: E402
from synth_pipeline.config import RunConfig  # noqa: E402
from synth_pipeline.copies import filter_rare_copies, generator_redraw  # noqa: E402
from synth_pipeline.data import load_dataset  # noqa: E402
from synth_pipeline.generators import available, make_generator  # noqa: E402

TABLES = ("flchain", "actg175", "gbsg2")
# Coarse tables (issue 14): age plus three binary flags (the target one of them), 860 rows drawn once
# (random_state 0) from a bundled table, so the 70/30 split trains on 602 rows. `--tables` names them.
COARSE = {"actg175_coarse": ("actg175", ("age", "gender", "drugs", "cens"), 860),
          "flchain_coarse": ("flchain", ("age", "sex", "mgus", "death"), 860)}
GATES = ("dcr_gate", "linkability_gate", "tstr_gate", "fidelity_gate")
QUICK = {"ctgan": {"epochs": 30}, "tvae": {"epochs": 30}, "cwgan_gp": {"epochs": 30}, "diffusion": {"epochs": 60}}
COLS = [("tstr_ratio", "TSTR/TRTR", 3), ("shape_err", "shape err", 4), ("trend_err", "trend err", 4),
        ("c2st", "C2ST AUROC", 3), ("dcr_share", "DCR share", 3), ("linkability", "linkability", 3),
        ("shape_err_unfiltered", "shape err unfiltered", 4), ("trend_err_unfiltered", "trend err unfiltered", 4),
        ("c2st_unfiltered", "C2ST unfiltered", 3), ("fit_s", "fit s", 1), ("sample_s", "sample s", 2), ("peak_mib", "peak RSS Δ MiB", 0)]


def load_table(name: str):
    """A bundled table, or a COARSE table cut from one (its columns, n rows, schema restricted to them)."""
    import dataclasses

    if name not in COARSE:
        return load_dataset(name)
    base, columns, n = COARSE[name]
    lt = load_dataset(base)
    raw = preprocess.model_table(lt.raw, lt.schema)[list(columns)].sample(n=n, random_state=0).reset_index(drop=True)
    schema = dataclasses.replace(lt.schema, dataset=name, columns=tuple(lt.schema.column(c) for c in columns),
                                 sensitive=tuple(c for c in lt.schema.sensitive if c in columns))
    return dataclasses.replace(lt, raw=raw, schema=schema)


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _metric(gate, name):
    for m in gate.metrics:
        if m.name == name:
            return m.value
    return None


def run_one(table: str, lt, seed: int, gen_name: str, budget: str, params: dict | None = None) -> dict:
    """One fit + sample + gates + fidelity; `params` (given) replace the budget's generator parameters."""
    from synth_pipeline import evaluation as ev
    from synth_pipeline.metrics.fidelity import fidelity_metrics

    row = {"table": table, "seed": seed, "generator": gen_name, "error": None}
    try:
        real = preprocess.model_table(lt.raw, lt.schema)
        s = preprocess.split(real, lt.schema, holdout_fraction=0.3, seed=seed)
        train, holdout, schema = s.train, s.holdout, lt.schema
        if params is None:
            params = QUICK.get(gen_name, {}) if budget == "quick" else {}
        row["params"] = params
        gen = make_generator(gen_name, **params)
        rss0 = _maxrss_mib()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            gen.fit(train, schema, target=schema.target, seed=seed)
            row["fit_s"] = time.perf_counter() - t
            t = time.perf_counter()
            synth = gen.sample(len(train), seed=seed)
            row["sample_s"] = time.perf_counter() - t
        row["peak_mib"] = _maxrss_mib() - rss0
        cfg = RunConfig(seed=seed)
        fm = {m.name: m.value for m in fidelity_metrics(train, synth, schema, seed=seed)}
        row["shape_err_unfiltered"] = None if fm.get("column_shapes") is None else 1 - fm["column_shapes"]
        row["trend_err_unfiltered"] = None if fm.get("column_pair_trends") is None else 1 - fm["column_pair_trends"]
        row["c2st_unfiltered"] = fm.get("c2st")
        synth, copies = filter_rare_copies(synth, train=train, schema=schema, k=cfg.small_cell_k,
                                           redraw=generator_redraw(gen, schema.target), seed=seed)
        row["rare_copies"] = copies.rare_copies
        if not copies.passed:
            row.setdefault("gate_reasons", {})["copy_filter"] = copies.reason()
        verdicts = {}
        for g in GATES:
            res = ev.run_gate(g, synth, train, holdout, schema, cfg)
            verdicts[g] = bool(res.passed)
            if g == "dcr_gate":
                row["dcr_share"] = _metric(res, "dcr_share")
            elif g == "linkability_gate":
                row["linkability"] = _metric(res, "linkability")
            elif g == "tstr_gate":
                row["tstr_ratio"] = _metric(res, "tstr_ratio")
            if not res.passed:
                row.setdefault("gate_reasons", {})[g] = res.reason
        row["gates"] = {**verdicts, "copy_filter": bool(copies.passed)}
        row["publishes"] = all(row["gates"].values())
        fm = {m.name: m.value for m in fidelity_metrics(train, synth, schema, seed=seed)}
        row["shape_err"] = None if fm.get("column_shapes") is None else 1 - fm["column_shapes"]
        row["trend_err"] = None if fm.get("column_pair_trends") is None else 1 - fm["column_pair_trends"]
        row["c2st"] = fm.get("c2st")
    except Exception as e:  # noqa: BLE001 - one failure must not stop the benchmark
        row["error"] = f"{type(e).__name__}: {e}"
        row["traceback"] = traceback.format_exc(limit=4)
    return row


REFERENCE = "real holdout"


def real_reference(table: str, lt, seed: int) -> dict:
    """The real holdout scored as if it were a synthetic table: the fidelity floor (see the docstring)."""
    from synth_pipeline.metrics.fidelity import fidelity_metrics

    real = preprocess.model_table(lt.raw, lt.schema)
    s = preprocess.split(real, lt.schema, holdout_fraction=0.3, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm = {m.name: m.value for m in fidelity_metrics(s.train, s.holdout.reset_index(drop=True), lt.schema, seed=seed)}
    n, m = len(s.train), len(s.holdout)
    scale = math.sqrt(2 / n) / math.sqrt(1 / n + 1 / m)
    return {"table": table, "seed": seed, "generator": REFERENCE, "error": None, "n_train": n, "n_holdout": m,
            "shape_err": 1 - fm["column_shapes"], "trend_err": 1 - fm["column_pair_trends"], "c2st": fm["c2st"],
            "shape_floor": (1 - fm["column_shapes"]) * scale, "trend_floor": (1 - fm["column_pair_trends"]) * scale}


def _reference_rows(rows, table):
    return [r for r in rows if r["table"] == table and r["generator"] == REFERENCE]


def _agg(vals):
    v = [x for x in vals if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return None, None, 0
    return float(np.mean(v)), (float(np.std(v, ddof=1)) if len(v) > 1 else None), len(v)


def _fmt(vals, nd):
    m, sd, n = _agg(vals)
    if m is None:
        return "—"
    return f"{m:.{nd}f}" + (f" ± {sd:.{nd}f}" if sd is not None else "")


def targets(rows, tables) -> list[str]:
    """The diffusion model's targets, judged on the mean over the seeds that ran."""
    out = []

    def mean(t, g, k):
        return _agg([r.get(k) for r in rows if r["table"] == t and r["generator"] == g and not r["error"]])[0]

    ts = [t for t in tables if mean(t, "diffusion", "tstr_ratio") is not None]
    if not ts:
        return ["- diffusion: no successful run — targets cannot be judged (NOT met)."]
    ratios = {t: mean(t, "diffusion", "tstr_ratio") for t in ts}
    avg = float(np.mean(list(ratios.values())))
    ok = lambda b: "met" if b else "**NOT met**"  # noqa: E731
    out.append(f"- TSTR/TRTR mean over tables ≥ 0.97: {avg:.3f} — {ok(avg >= 0.97)}")
    out.append("- TSTR/TRTR ≥ 0.93 on every table: " + ", ".join(f"{t} {v:.3f}" for t, v in ratios.items())
               + f" — {ok(all(v >= 0.93 for v in ratios.values()))}")
    for key, lim, label, nd in (("shape_err", 0.015, "shape error ≤ 1.5%", 4), ("trend_err", 0.03, "trend error ≤ 3%", 4),
                                ("c2st", 0.60, "C2ST AUROC ≤ 0.60", 3), ("dcr_share", 0.53, "DCR share ≤ 0.53", 3)):
        vals = {t: mean(t, "diffusion", key) for t in ts}
        good = all(v is not None and v <= lim for v in vals.values())
        floor = ""
        if key in ("shape_err", "trend_err"):
            fl = {t: _agg([r.get(key.replace("_err", "_floor")) for r in _reference_rows(rows, t)])[0] for t in ts}
            if all(v is not None for v in fl.values()):
                floor = " (real-data floor at n_train: " + ", ".join(f"{t} {v:.{nd}f}" for t, v in fl.items()) + ")"
        out.append(f"- {label}: " + ", ".join(f"{t} {v:.{nd}f}" if v is not None else f"{t} —" for t, v in vals.items())
                   + f" — {ok(good)}{floor}")
    for rival in ("ctgan", "tvae"):
        parts, good = [], True
        for t in ts:
            du, dp = mean(t, "diffusion", "tstr_ratio"), mean(t, "diffusion", "dcr_share")
            ru, rp = mean(t, rival, "tstr_ratio"), mean(t, rival, "dcr_share")
            if ru is None or rp is None:
                parts.append(f"{t}: {rival} has no TSTR ratio / DCR share (failed or not computable)"); good = False; continue
            better = du > ru and dp is not None and dp <= rp
            good &= better
            parts.append(f"{t}: TSTR {du:.3f} vs {ru:.3f}, DCR share {dp:.3f} vs {rp:.3f}")
        out.append(f"- better than {rival} on utility (TSTR/TRTR) at equal or better privacy (DCR share): "
                   + "; ".join(parts) + f" — {ok(good)}")
    if len(ts) < len(tables):
        out.append(f"- (diffusion ran on {', '.join(ts)} only; targets on the other tables not judged)")
    return out


def fidelity_margins(rows, tables, generators) -> list[str]:
    """How far each generator's column shapes / pair trends sit below the real-sample floor (the holdout's
    own scores against train, same seed): the largest deficit over seeds, what fidelity_gate compares
    with its margins (0.25). Computed from the rows, so runs from before the gate existed are judged too."""
    out = ["| table | generator | seeds | largest shape deficit | largest trend deficit | within 0.25 |", "|---|---|---|---|---|---|"]
    for t in tables:
        ref = {r["seed"]: r for r in _reference_rows(rows, t)}
        for g in generators:
            ok = [r for r in rows if r["table"] == t and r["generator"] == g and not r["error"] and r["seed"] in ref
                  and r.get("shape_err") is not None and r.get("trend_err") is not None]
            if not ok:
                continue
            shape = max(r["shape_err"] - ref[r["seed"]]["shape_err"] for r in ok)
            trend = max(r["trend_err"] - ref[r["seed"]]["trend_err"] for r in ok)
            out.append(f"| {t} | {g} | {','.join(str(r['seed']) for r in ok)} | {shape:+.3f} | {trend:+.3f} | "
                       f"{'yes' if max(shape, trend) <= 0.25 else '**no**'} |")
    return out


def write_md(path: Path, rows, args, started, done: bool):
    tables = [t for t in args.tables if any(r["table"] == t for r in rows)]
    L = ["# Generator benchmark (issue 4)", "", *([args.note, ""] if getattr(args, "note", "") else []),
         f"Produced by `benchmarks/generators.py` — budget **{args.budget}**, seeds {' '.join(map(str, args.seeds))}, "
         f"tables {', '.join(args.tables)}, generators {', '.join(args.generators)}.", "",
         f"Machine: {platform.node() or '?'} ({platform.machine()}, {os.cpu_count()} CPU cores, Python "
         f"{platform.python_version()}); started {started} UTC. Status: "
         + ("**complete**." if done else "**partial — still running or stopped early**; rows below are what finished."), "",
         "Budget quick = epochs 30 for ctgan / tvae / cwgan_gp, 60 for diffusion; full = the generators' defaults. "
         "Values are mean ± sd over seeds (sd omitted when one seed). TSTR/TRTR = best TSTR AUROC / best TRTR AUROC "
         "(tstr_gate's `tstr_ratio`); shape / trend error = 1 − column_shapes / column_pair_trends; C2ST = classifier "
         "two-sample AUROC (0.5 = indistinguishable); DCR share = `dcr_share`; linkability = `linkability` risk. "
         "Publishes = the default gates dcr, linkability, tstr (and fidelity, in runs made since it exists) and the copy filter pass with RunConfig(seed). Peak RSS Δ = increase "
         "of the process's ru_maxrss over fit+sample (shared process: a lower bound, ~0 when under an earlier peak).", ""]
    for t in tables:
        L += [f"## {t}", "", "| generator | seeds | " + " | ".join(c[1] for c in COLS) + " | publishes | gates failed |",
              "|---" * (len(COLS) + 4) + "|"]
        for g in args.generators:
            rs = [r for r in rows if r["table"] == t and r["generator"] == g]
            if not rs:
                continue
            ok = [r for r in rs if not r["error"]]
            errs = [r for r in rs if r["error"]]
            if not ok:
                L.append(f"| {g} | 0/{len(rs)} | failed: {errs[0]['error'][:160].replace('|', '/')} " + "| " * (len(COLS) + 1) + "|")
                continue
            cells = [_fmt([r.get(k) for r in ok], nd) for k, _, nd in COLS]
            pub = sum(bool(r.get("publishes")) for r in ok)
            failed = sorted({g2 for r in ok for g2, v in r.get("gates", {}).items() if not v})
            note = f" ({len(errs)} seed(s) failed: {errs[0]['error'][:80]})" if errs else ""
            L.append(f"| {g} | {','.join(str(r['seed']) for r in ok)} | " + " | ".join(cells) + f" | {'yes' if pub == len(ok) else ('no' if pub == 0 else f'{pub}/{len(ok)}')} | "
                     + (", ".join(x.replace('_gate', '') for x in failed) or "—") + note.replace("|", "/") + " |")
        ref = _reference_rows(rows, t)
        if ref:
            L += ["", f"Reference, {REFERENCE} vs train (seeds {','.join(str(r['seed']) for r in ref)}; "
                  f"{ref[0]['n_holdout']} vs {ref[0]['n_train']} rows): shape err {_fmt([r['shape_err'] for r in ref], 4)}, "
                  f"trend err {_fmt([r['trend_err'] for r in ref], 4)}, C2ST {_fmt([r['c2st'] for r in ref], 3)}; "
                  f"floor at n_train (an independent real sample of {ref[0]['n_train']} rows): shape err "
                  f"{_fmt([r['shape_floor'] for r in ref], 4)}, trend err {_fmt([r['trend_floor'] for r in ref], 4)}."]
        copies = [(r["generator"], r["rare_copies"]) for r in rows if r["table"] == t and r.get("rare_copies")]
        if copies:
            L += ["", "Copy filter: sampled rows equal to a rare training row, redrawn or removed: "
                  + ", ".join(f"{g} {c}" for g, c in copies) + "."]
        L.append("")
    L += ["## Fidelity against the real-sample floor", "",
          "Deficit = the generator's shape (trend) error minus the real holdout's on the same split; fidelity_gate "
          "refuses a deficit above 0.25 on either.", ""] + fidelity_margins(rows, tables, args.generators) + [""]
    L += ["## Diffusion targets check", ""] + targets(rows, tables) + [""]
    if getattr(args, "after", None):
        L += [Path(args.after).read_text().strip(), ""]
    L += ["![TSTR ratio vs DCR share](generators.png)", ""]
    path.write_text("\n".join(L))


def plot(path: Path, rows, tables):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tables = [t for t in tables if any(r["table"] == t and not r["error"] for r in rows)]
    if not tables:
        return
    fig, axes = plt.subplots(1, len(tables), figsize=(5.5 * len(tables), 4.5), squeeze=False)
    for ax, t in zip(axes[0], tables):
        gens = sorted({r["generator"] for r in rows if r["table"] == t and not r["error"]})
        for g in gens:
            ok = [r for r in rows if r["table"] == t and r["generator"] == g and not r["error"]]
            x, y = _agg([r.get("dcr_share") for r in ok])[0], _agg([r.get("tstr_ratio") for r in ok])[0]
            if x is None or y is None:
                continue
            pub = all(r.get("publishes") for r in ok)
            ax.scatter(x, y, marker="o" if pub else "x", s=50, color="C2" if g == "diffusion" else ("C0" if pub else "C3"))
            ax.annotate(g, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axvline(0.53, ls=":", c="grey"); ax.axhline(0.93, ls=":", c="grey")
        ax.set_title(t); ax.set_xlabel("DCR share (lower = more private)"); ax.set_ylabel("TSTR / TRTR AUROC")
    fig.suptitle("Generators: utility vs privacy (o publishes, x refused)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tables", nargs="+", default=list(TABLES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--generators", nargs="+", default=None)
    p.add_argument("--budget", choices=("quick", "full"), default="full")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "GENERATORS.md"))
    p.add_argument("--note", default="", help="a paragraph put under the report's heading (how it was run)")
    p.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True,
                   help="score the real holdout against train once per (table, seed): the fidelity floor")
    p.add_argument("--after", default=None, help="a Markdown file put after the targets check (what the misses mean)")
    p.add_argument("--raw", default=None, help="also write the raw rows as JSON here")
    p.add_argument("--from-raw", nargs="+", default=None,
                   help="do not run: render --out and its .png from these JSON files (e.g. parallel runs)")
    a = p.parse_args()
    a.generators = a.generators or list(available())
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_name(out.stem.lower() + ".png")  # GENERATORS.md -> generators.png
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    rows: list[dict] = []
    if a.from_raw:
        for f in a.from_raw:
            rows += json.loads(Path(f).read_text())
        # one row per (table, seed, generator): a later file wins (a re-run, or a reference row per file)
        rows = list({(r["table"], r["seed"], r["generator"]): r for r in rows}.values())
        write_md(out, rows, a, started + " (rendered from " + ", ".join(Path(f).name for f in a.from_raw) + ")",
                 done=True)
        plot(png, rows, a.tables)
        print(f"wrote {out}, {png}")
        return 0
    loaded = {t: load_table(t) for t in a.tables}
    # seeds, then generators, then tables: a run stopped early still has each generator on every table
    for seed in a.seeds:
        if a.reference:
            for t in a.tables:
                rows.append(real_reference(t, loaded[t], seed))
        for g in a.generators:
            for t in a.tables:
                lt = loaded[t]
                t0 = time.perf_counter()
                print(f"[{time.strftime('%H:%M:%S')}] {t} seed {seed} {g} ...", flush=True)
                r = run_one(t, lt, seed, g, a.budget)
                rows.append(r)
                msg = (f"ERROR {r['error'][:200]}" if r["error"] else
                       f"tstr {r.get('tstr_ratio')} dcr {r.get('dcr_share')} link {r.get('linkability')} "
                       f"c2st {r.get('c2st')} publishes {r.get('publishes')} fit {r.get('fit_s', 0):.1f}s")
                print(f"    -> {msg} ({time.perf_counter() - t0:.1f} s)", flush=True)
                write_md(out, rows, a, started, done=False)
                if a.raw:
                    Path(a.raw).write_text(json.dumps(rows, indent=1, default=str))
                try:
                    plot(png, rows, a.tables)
                except Exception as e:  # noqa: BLE001
                    print(f"    (plot failed: {e})", flush=True)
    write_md(out, rows, a, started, done=True)
    plot(png, rows, a.tables)
    print(f"wrote {out}, {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
