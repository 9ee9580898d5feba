"""Benchmark: the differentially private generators (issue 14 part 1) at several ε, beside non-DP ones.

    .venv/bin/python benchmarks/dp.py --generators mst --epsilons 1 3 10 --seeds 0 1 --raw /tmp/dp_mst.json
    .venv/bin/python benchmarks/dp.py --generators dp_diffusion --epsilons 3 --seeds 0 --tables flchain \\
        --params '{"epochs": 30}' --raw /tmp/dp_diff.json
    .venv/bin/python benchmarks/dp.py --from-raw /tmp/dp_mst.json /tmp/dp_diff.json --out benchmarks/DP.md

Each (table, seed, generator, ε) runs benchmarks/generators.py's `run_one` (the pipeline's split, fit,
sample, copy filter, the three default gates, fidelity) with generator_params {"epsilon": ε, "delta":
δ, **--params}; a generator without ε (e.g. gaussian_copula) runs once per (table, seed) as the
non-DP reference. A refusal (the generator cannot meet ε) is a row saying so.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import numpy as np  # noqa: E402

from generators import run_one  # noqa: E402
from synth_pipeline.data import load_dataset  # noqa: E402

DP = ("mst", "dp_diffusion")
COLS = [("tstr_ratio", "TSTR/TRTR", 3), ("shape_err", "shape err", 4), ("trend_err", "trend err", 4),
        ("c2st", "C2ST", 3), ("dcr_share", "DCR share", 3), ("linkability", "linkability", 3), ("fit_s", "fit s", 1)]


def run(args) -> list[dict]:
    rows = []
    extra = json.loads(args.params)
    for table in args.tables:
        lt = load_dataset(table)
        for seed in args.seeds:
            for gen in args.generators:
                for eps in (args.epsilons if gen in DP else [None]):
                    params = {**extra, "epsilon": float(eps), "delta": args.delta} if eps is not None else extra
                    row = run_one(table, lt, seed, gen, "full", params)
                    row["epsilon"] = eps
                    rows.append(row)
                    print(json.dumps({k: row.get(k) for k in ("table", "seed", "generator", "epsilon", "tstr_ratio",
                                                            "shape_err", "dcr_share", "publishes", "error")}),
                          flush=True)
                    if args.raw:
                        Path(args.raw).write_text(json.dumps(rows, indent=1, default=str))
    return rows


def _cell(vals, nd):
    v = [x for x in vals if x is not None]
    if not v:
        return "—"
    return f"{np.mean(v):.{nd}f}" + (f" ± {np.std(v, ddof=1):.{nd}f}" if len(v) > 1 else "")


def write_md(path: Path, rows: list[dict], note: str) -> None:
    lines = ["# Differentially private generators (issue 14, part 1)", "", note, "",
             f"Rendered {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC on {platform.node()} "
             f"({platform.machine()}, Python {platform.python_version()}). Values: mean ± sd over seeds. "
             "TSTR/TRTR = tstr_gate's ratio; shape / trend error = 1 − column shapes / pair trends; DCR share "
             "= dcr_gate's; publishes = dcr, linkability and tstr gates all pass (RunConfig(seed) defaults).", ""]
    for table in dict.fromkeys(r["table"] for r in rows):
        lines += [f"## {table}", "", "| generator | ε | seeds | " + " | ".join(c[1] for c in COLS)
                  + " | publishes | refused / failed |", "|---" * (len(COLS) + 5) + "|"]
        keys = dict.fromkeys((r["generator"], r.get("epsilon")) for r in rows if r["table"] == table)
        for gen, eps in keys:
            rs = [r for r in rows if r["table"] == table and r["generator"] == gen and r.get("epsilon") == eps]
            ok = [r for r in rs if not r.get("error")]
            fails = sorted({g.replace("_gate", "") for r in ok for g, v in (r.get("gates") or {}).items() if not v})
            errs = sorted({r["error"].split(":", 1)[0] + ": " + r["error"].split(": ", 1)[-1][:90] for r in rs
                           if r.get("error")})
            lines.append(f"| {gen} | {'—' if eps is None else f'{eps:g}'} | {','.join(str(r['seed']) for r in rs)} | "
                         + " | ".join(_cell([r.get(k) for r in ok], nd) for k, _, nd in COLS)
                         + f" | {sum(bool(r.get('publishes')) for r in ok)}/{len(rs)} | "
                         + "; ".join(fails + errs).replace("|", "/") + " |")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tables", nargs="+", default=["flchain", "actg175", "gbsg2"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--generators", nargs="+", default=["mst", "gaussian_copula"])
    p.add_argument("--epsilons", nargs="+", type=float, default=[1.0, 3.0, 10.0])
    p.add_argument("--delta", type=float, default=1e-6)
    p.add_argument("--params", default="{}", help="JSON generator_params added to every DP run")
    p.add_argument("--raw", default=None)
    p.add_argument("--from-raw", nargs="+", default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--note", default="")
    args = p.parse_args()
    rows = [r for f in args.from_raw for r in json.loads(Path(f).read_text())] if args.from_raw else run(args)
    if args.out:
        write_md(Path(args.out), rows, args.note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
