"""Measurements behind the inference gate and the linkability attacker (benchmarks/PRIVACY_GATES.md).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/privacy_gates.py --out /tmp/privacy_gates.json

For the bundled tables (FLCHAIN, ACTG175, GBSG2) and scikit-learn's breast-cancer table (30 numeric
columns), with the pipeline's seeded 70/30 split and three train-sized candidates (the default
`gaussian_copula`, the `copy` and `perturbed_copy` controls), it records anonymeter's linkability with
1 neighbour (anonymeter's default) and 5 (the former default of this pipeline), each with the attack
and control success rates, and attribute inference of the target and every declared sensitive
column. One JSON object per (table, candidate) is written, with the seconds it took.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from agreement import candidate  # noqa: E402  (benchmarks/agreement.py: same split and candidates)
from agreement import load as load_bundled  # noqa: E402
from synth_pipeline import preprocess  # noqa: E402
from synth_pipeline.schema import ColumnSpec, Schema, conform  # noqa: E402

TABLES = ("flchain", "actg175", "gbsg2", "breast_cancer")
CANDIDATES = ("gaussian_copula", "copy", "perturbed_copy")


def breast_cancer() -> tuple[pd.DataFrame, Schema]:
    """scikit-learn's Wisconsin breast-cancer table (569 rows, 30 numeric features, ships with sklearn)."""
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer(as_frame=True)
    df = d.frame.rename(columns=lambda c: c.replace(" ", "_"))
    df["target"] = df["target"].map({0: "malignant", 1: "benign"})
    cols = tuple(ColumnSpec(c, "numeric") for c in df.columns if c != "target") + (
        ColumnSpec("target", "categorical", categories=("benign", "malignant"), max_missing=0.0),)
    schema = Schema(dataset="breast_cancer", target="target", columns=cols, positive="malignant",
                    source="sklearn.datasets.load_breast_cancer")
    return conform(df, schema), schema


def load(name: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, Schema]:
    """The pipeline's train / holdout split of one table (seeded, stratified, 70/30)."""
    if name != "breast_cancer":
        return load_bundled(name, seed)
    table, schema = breast_cancer()
    s = preprocess.split(table, schema, holdout_fraction=0.3, seed=seed)
    return s.train, s.holdout, schema


def _row(m) -> dict:
    d = {"value": m.value, "ci": list(m.ci) if m.ci else None, "error": m.error}
    for k in ("attack_rate", "control_rate", "baseline_rate", "n_attacks", "n_neighbors", "rows_needed"):
        if k in m.detail:
            d[k] = m.detail[k]
    return d


def measure(name: str, cand: str, seed: int, neighbors: tuple[int, ...], attacks: int) -> dict:
    from synth_pipeline.metrics.attacks import inference
    from synth_pipeline.metrics.privacy import linkability

    t0 = time.perf_counter()
    train, holdout, schema = load(name, seed)
    syn = candidate(cand, train, schema, seed)
    out: dict = {"table": name, "candidate": cand, "train": len(train), "holdout": len(holdout),
                 "columns": len(schema.names), "fit_s": round(time.perf_counter() - t0, 1)}
    for k in neighbors:
        out[f"link_k{k}"] = _row(linkability(train, holdout, syn, schema, n_attacks=attacks, n_neighbors=k, seed=seed))
    for m in inference(train, holdout, syn, schema, seed=seed):
        out[m.name] = _row(m)
    out["total_s"] = round(time.perf_counter() - t0, 1)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tables", nargs="+", default=list(TABLES))
    p.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    p.add_argument("--neighbors", nargs="+", type=int, default=[1, 5])
    p.add_argument("--attacks", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="JSON lines, one per table x candidate")
    a = p.parse_args()
    with a.out.open("a") as f:
        for name in a.tables:
            for cand in a.candidates:
                r = measure(name, cand, a.seed, tuple(a.neighbors), a.attacks)
                f.write(json.dumps(r) + "\n")
                f.flush()
                print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
