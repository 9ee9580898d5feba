"""Benchmark: peak memory of the streaming passes (synth_pipeline.batches), each in a fresh process.

    python benchmarks/stream_memory.py --rows 1000000 --rows 3000000                 # this checkout
    python benchmarks/stream_memory.py --rows 1000000 --code /work/main --label main  # another checkout

On the FLCHAIN-shaped table of benchmarks/scale.py (N rows, Parquet, and the same table as CSV), one
child process per (operation, N) imports the code under `--code`, loads what the operation starts
from (the table as the IO manager hands it to a step, or nothing for a file read) and runs:
  * read_csv: readers.read_table on the CSV file (the raw_table step's read of a CSV input);
  * read_parquet: readers.read_table on the Parquet file (unchanged; the control);
  * parquet_batches: the same file read with pyarrow's ParquetFile.iter_batches, each batch to pandas,
    then concatenated (the alternative for a step that needs the whole table);
  * row_hashes: hashing.row_hashes over every column of the table (the copy filter, DCR gate,
    release and the anonymeter steps' coordinated sample hash whole tables);
  * exact_copies: copies.training_shares of a synthetic table of 0.8 N rows against a train table
    of 0.8 N rows (what the DCR gate's exact-copy count does, once per table).
  * validate: validation.validate_table (Great Expectations) on the typed table, after load_dataset
    and model_table with scale.py's column kinds (unchanged here; is it worth streaming?).
Reported: the process's peak RSS during the operation (VmHWM, reset through /proc/self/clear_refs
once the inputs are loaded, so the load's own transient peak is not counted; Linux only) less its
RSS just before it ("added by the operation": what the step pays on top of holding its inputs), the
table's deep size in pandas (strings pyarrow shares are counted once per cell), and the wall
seconds, with the machine's 1-minute load average. Prints one markdown row per run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
OPS = ("read_csv", "read_parquet", "parquet_batches", "row_hashes", "exact_copies", "validate")

CHILD = r"""
import gc, json, sys, time
from pathlib import Path
import synth_pipeline
print(synth_pipeline.__file__, file=sys.stderr)
import pandas as pd
op, parquet, csv = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
from synth_pipeline import hashing
from synth_pipeline.copies import training_shares
from synth_pipeline.data import readers

def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

def peak_mib():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024

table = None if op.startswith(("read_", "parquet_")) else pd.read_parquet(parquet)
if op == "validate":
    from synth_pipeline.data import load_dataset
    from synth_pipeline.preprocess import model_table
    from synth_pipeline.validation import _import_gx, validate_table
    _import_gx()
    loaded = load_dataset(str(parquet), target="death", column_kinds=json.loads(sys.argv[4]))
    schema, table = loaded.schema, model_table(loaded.raw, loaded.schema)
    del loaded
if op == "exact_copies":
    cut = int(len(table) * 0.8)
    train, synthetic = table.iloc[:cut], table.iloc[len(table) - cut:]
gc.collect()
with open("/proc/self/clear_refs", "w") as f:  # the peak so far (loading the inputs) is not the operation's
    f.write("5")
before, start = rss_mib(), time.perf_counter()
if op == "read_csv":
    table = readers.read_table(csv)
elif op == "read_parquet":
    table = readers.read_table(parquet)
elif op == "parquet_batches":
    import pyarrow.parquet as pq
    table = pd.concat([b.to_pandas() for b in pq.ParquetFile(parquet).iter_batches(batch_size=65_536)],
                      ignore_index=True)
elif op == "validate":
    assert validate_table(table, schema).success
elif op == "row_hashes":
    hashing.row_hashes(table, list(table.columns))
else:
    training_shares(synthetic, train=train, columns=list(table.columns))
seconds = time.perf_counter() - start
peak = peak_mib()
print(json.dumps({"added_mib": round(peak - before, 1), "peak_mib": round(peak, 1), "seconds": round(seconds, 2),
                  "table_mib": round(table.memory_usage(deep=True).sum() / 2**20, 1)}))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, action="append", required=True)
    p.add_argument("--code", type=Path, default=ROOT, help="checkout whose synth_pipeline is measured")
    p.add_argument("--label", default="this checkout")
    p.add_argument("--ops", nargs="*", default=list(OPS), choices=OPS)
    p.add_argument("--timeout", type=float, default=900)
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from scale import CONFIG, make_table  # the benchmark table, made by this checkout's code

    print("| date | code | rows | operation | added by the operation (peak RSS) | table in pandas | wall | load |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="stream-memory-") as tmp:
        for rows in args.rows:
            parquet, csv = Path(tmp) / f"t{rows}.parquet", Path(tmp) / f"t{rows}.csv"
            make_table(rows, 0, parquet)
            pd.read_parquet(parquet).to_csv(csv, index=False)
            for op in args.ops:
                env = {**os.environ, "PYTHONPATH": str(args.code.resolve())}
                cmd = [sys.executable, "-c", CHILD, op, str(parquet), str(csv), json.dumps(CONFIG["column_kinds"])]
                out = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=args.timeout)
                if out.returncode != 0:
                    print(f"| {op} | {rows} | failed: {out.stderr.strip().splitlines()[-1]} |", flush=True)
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                assert f"{args.code.resolve()}/synth_pipeline/" in out.stderr, out.stderr  # the code asked for
                date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
                print(f"| {date} | {args.label} | {rows:,} | {op} | {r['added_mib']:.0f} MiB ({r['peak_mib']:.0f} MiB) | "
                      f"{r['table_mib']:.0f} MiB | {r['seconds']:.1f} s | {os.getloadavg()[0]:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
