"""Where the splittable heavy work runs: in this process, or as tasks on a dask.distributed cluster.

The address comes from one place, `scheduler_address()`: the value a step set with `using()` (the
Dagster `cluster` resource, resources/cluster.py), else $SYNTH_DASK_SCHEDULER; empty means this
process, as without a cluster. Callers split their work into independent, seeded tasks and hand
them to `map_tasks`, which returns the results in order: the same values whether the tasks ran here
or on the cluster (tests/test_cluster.py), given the same code and packages on the workers (the
image the steps run in).
"""

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

SCHEDULER_ENV = "SYNTH_DASK_SCHEDULER"  # e.g. tcp://dask-scheduler:8786

_active: str | None = None  # set by using(); None: $SYNTH_DASK_SCHEDULER decides
_CLIENTS: dict[str, Any] = {}


def scheduler_address() -> str:
    """The scheduler this process sends work to, or "" for none."""
    return _active if _active is not None else os.environ.get(SCHEDULER_ENV, "")


@contextmanager
def using(address: str | None) -> Iterator[None]:
    """Within the block, `address` is the scheduler ("" forces this process; None leaves the
    environment's). A named scheduler is connected on entry, so an unreachable cluster fails the
    step here (a transient error, retried) instead of inside a metric."""
    global _active
    previous = _active
    if address:
        client(address)
    _active = address if address is not None else previous
    try:
        yield
    finally:
        _active = previous


def client(address: str):
    """One dask.distributed client per scheduler address, kept for the process's lifetime."""
    if address not in _CLIENTS:
        from distributed import Client

        _CLIENTS[address] = Client(address, set_as_default=False)
    return _CLIENTS[address]


def task_slots() -> int:
    """How many tasks run at once where the work goes: 1 in this process, else the cluster's worker
    threads (a caller splitting work that has no natural pieces cuts it into this many)."""
    address = scheduler_address()
    if not address:
        return 1
    return max(1, sum(w.get("nthreads", 1) for w in client(address).scheduler_info()["workers"].values()))


_ONE_AT_A_TIME = threading.Lock()


def _run_here(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A task on a worker runs in that worker's process (no nested submission to the cluster), one
    at a time per process: tasks set process-wide state (the BLAS/OpenMP thread limit of a fit,
    library RNG seeds) that a second task in another thread would disturb. Parallelism comes from
    worker processes (`dask worker --nthreads 1 --nworkers N`)."""
    with _ONE_AT_A_TIME, using(""):
        return fn(*args, **kwargs)


def map_tasks(fn: Callable[..., Any], items: Iterable[tuple], **shared: Any) -> list[Any]:
    """[fn(*item, **shared) for item in items], on the configured cluster when there is one.

    On a cluster every distinct large argument (a DataFrame, an array: anything but a str, number,
    bool or None) is sent to the workers once and shared by the tasks that use it; `fn` must be a
    module-level function and its results picklable."""
    items = [tuple(item) for item in items]
    address = scheduler_address()
    if not address or len(items) < 2:
        return [fn(*item, **shared) for item in items]
    c = client(address)
    sent: dict[int, Any] = {}

    def remote(value: Any) -> Any:
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        if id(value) not in sent:
            sent[id(value)] = c.scatter(value, broadcast=True, hash=False)
        return sent[id(value)]

    kw = {k: remote(v) for k, v in shared.items()}
    futures = [c.submit(_run_here, fn, *(remote(v) for v in item), pure=False, **kw) for item in items]
    try:
        return c.gather(futures)
    finally:
        c.cancel(futures + list(sent.values()))
