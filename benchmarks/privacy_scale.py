"""How the privacy metrics scale (benchmarks/PRIVACY_GATES.md, "Large tables"): DCR-step time with every
row queried (the rule before sampling) and with the sampled rule, and singling-out's query yield and
risk with and without the coordinated sample, on a FLCHAIN-shaped table of N rows.

The table: FLCHAIN rows drawn with replacement, each numeric value moved by Gaussian noise of 2% of
its column's standard deviation (integers re-rounded), split 70/30 as the pipeline splits. "fresh" is
a second such draw of train's size (a sample of the same population the generator never saw), "copy"
is the training table itself.

    python benchmarks/privacy_scale.py --rows 50000 --what dcr
    python benchmarks/privacy_scale.py --rows 200000 --what singling_out --before
"""

import argparse
import json
import time

import numpy as np

from synth_pipeline import preprocess
from synth_pipeline.config import Thresholds
from synth_pipeline.data import load_dataset
from synth_pipeline.metrics import attacks
from synth_pipeline.metrics.privacy import dcr_metrics
from synth_pipeline.schema import conform


def flchain_shaped(rows: int, seed: int):
    lt = load_dataset("flchain")
    base = preprocess.model_table(lt.raw, lt.schema)
    rng = np.random.default_rng(seed)
    df = base.iloc[rng.integers(0, len(base), rows)].reset_index(drop=True)
    for c in lt.schema.numeric:
        df[c] = df[c] + rng.normal(0.0, 0.02 * base[c].std(), rows)
    return conform(df, lt.schema), lt.schema


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--what", choices=["dcr", "singling_out"], required=True)
    p.add_argument("--before", action="store_true", help="the rule before this change: every row queried / "
                                                         "no coordinated sample")
    p.add_argument("--synthetic", choices=["fresh", "copy"], default="fresh")
    args = p.parse_args()
    df, schema = flchain_shaped(args.rows, seed=0)
    s = preprocess.split(df, schema, holdout_fraction=0.3, seed=0)
    train, holdout = s.train, s.holdout
    if args.synthetic == "copy":
        synthetic = train
    else:
        fresh, _ = flchain_shaped(len(train), seed=1)
        synthetic = fresh
    out = {"rows": args.rows, "what": args.what, "before": args.before, "synthetic": args.synthetic,
           "train": len(train), "holdout": len(holdout)}
    t0 = time.perf_counter()
    if args.what == "dcr":
        width = 1e-4 if args.before else Thresholds().dcr_ci_width_max  # 1e-4: ~384M rows, i.e. every row
        res = {m.name: m for m in dcr_metrics(train, holdout, synthetic, schema, seed=0, ci_width=width)}
        out.update({n: res[n].value for n in res}, memorisation_ci=res["memorisation_rate"].ci,
                   dcr_share_ci=res["dcr_share"].ci,
                   queried=res["memorisation_rate"].detail["sampling"]["synthetic"]["queried"])
    else:
        if args.before:
            attacks.SINGLING_OUT_ROWS = 10**12
        m = attacks.singling_out(train, holdout, synthetic, schema, seed=0)
        out.update(value=m.value, ci=m.ci, error=m.error,
                   **{k: m.detail.get(k) for k in ("n_attacks", "n_success", "n_control_success", "rows_per_side",
                                                   "max_attempts", "coordinated_sample")})
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
