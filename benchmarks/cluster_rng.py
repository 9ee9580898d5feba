"""Why the per-column inference attacks once differed on a dask worker (issue 13, part 4), and that
they no longer do: on a two-worker LocalCluster, numpy's `np.random.choice` is wrapped on every worker
to log the calling thread and stack, and the attacks run per column through cluster.map_tasks, four
times with the attacks of commit 6fba0e0 (targets drawn by anonymeter's pandas `.sample()` from
numpy's global RNG) and four times with this checkout's (`_inference_targets`, a private RNG).
Prints each run's control successes against the local run and how many draws the worker's event
loop made while an attack task ran, then the stacks of those event-loop draws.

    PYTHONPATH=$PWD python benchmarks/cluster_rng.py
"""

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
BEFORE = "6fba0e0"  # main before the fix


def install() -> None:
    """On a worker: log every np.random.choice call (time, thread, stack); reset the log if present."""
    import threading
    import time
    import traceback

    import numpy as np

    if getattr(np.random, "_log", None) is not None:
        np.random._log.clear()
        np.random._spans.clear()
        return
    real = np.random.choice
    log, spans = [], []

    def choice(*a, **k):
        st = traceback.extract_stack(limit=14)
        frames = (f"{f.filename.split('site-packages/')[-1]}:{f.lineno}:{f.name}" for f in reversed(st[:-1]))
        log.append((time.monotonic(), threading.current_thread().name, " <- ".join(frames)))
        return real(*a, **k)

    np.random.choice = choice
    np.random._log, np.random._spans = log, spans


def timed(fn, *args, **kw):
    """Run a task and record its start and end on the worker."""
    import time

    import numpy as np

    t0 = time.monotonic()
    try:
        return fn(*args, **kw)
    finally:
        np.random._spans.append((t0, time.monotonic()))


def collect():
    import numpy as np

    return list(np.random._log), list(np.random._spans)


def main() -> None:
    import cloudpickle
    from distributed import LocalCluster
    from sklearn.model_selection import train_test_split

    from _flchain import flchain, noisy_copy
    from synth_pipeline import cluster
    from synth_pipeline.metrics import attacks as new

    src = subprocess.run(["git", "show", f"{BEFORE}:synth_pipeline/metrics/attacks.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "attacks_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("attacks_before", path)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    sys.modules["attacks_before"] = old
    cloudpickle.register_pickle_by_value(old)

    df, schema = flchain()  # tests/test_cluster.py's `small` table
    rows, _ = train_test_split(df, train_size=1000, stratify=df[schema.target], random_state=0)
    rows = rows.reset_index(drop=True)
    train, holdout = rows.iloc[:600].reset_index(drop=True), rows.iloc[600:900].reset_index(drop=True)
    syn = noisy_copy(rows.iloc[900:], schema, seed=2).reset_index(drop=True)
    secrets = [schema.target, "kappa", "sex"]
    versions = ((BEFORE, old), ("branch", new))
    local = {name: [m.detail["n_control_success"]
                    for m in mod.inference(train, holdout, syn, schema, n_attacks=100, secrets=secrets, seed=1)[:3]]
             for name, mod in versions}
    print("local control successes", local, flush=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        c = cluster.client(lc.scheduler_address)
        with cluster.using(lc.scheduler_address):
            for name, mod in versions * 4:
                c.run(install)
                out = cluster.map_tasks(timed, [(mod._inference_one, train, holdout, syn, schema, s) for s in secrets],
                                        n_attacks=100, seed=1)
                got = [m.detail["n_control_success"] for m in out]
                logs = c.run(collect)
                loop = [(t, st) for log, spans in logs.values() for t, th, st in log if "Default-Threads" not in th]
                inside = sum(1 for log, spans in logs.values() for t, th, _ in log
                             if "Default-Threads" not in th and any(a <= t <= b for a, b in spans))
                print(f"{name:7s} control successes {got} local {local[name]} equal={got == local[name]}; "
                      f"event-loop draws during a task {inside}, outside {len(loop) - inside}", flush=True)
    callers = sorted({st.split(" <- ")[0] + " <- " + st.split(" <- ")[-1] for _, st in loop})
    print("event-loop draw sites (first and last frame):", *callers, sep="\n  ")


if __name__ == "__main__":
    main()
