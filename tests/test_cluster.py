"""The heavy steps' splittable work (utility model fits, per-column inference attacks) runs as tasks on
a dask.distributed cluster when one is configured — a LocalCluster here, a scheduler address in
production — and gives exactly the local results; without one, everything runs in this process."""

import json
import os
import threading
import time

import numpy as np
import pandas as pd
import pytest

from resources import DaskCluster
from synth_pipeline import cluster
from synth_pipeline.metrics import attacks, utility

_STOP_DRAWING = threading.Event()


def _pid(tag: str) -> tuple[str, int, str]:
    return tag, os.getpid(), cluster.scheduler_address()


def _dumped(results) -> list[str]:
    return [json.dumps(m.to_dict(), sort_keys=True) for m in results]


@pytest.fixture(scope="module")
def small(flchain_sample):
    """600 real FLCHAIN rows as train, 300 as holdout, the other 100 perturbed as "synthetic"."""
    from _flchain import noisy_copy

    rows, schema = flchain_sample
    train, holdout = rows.iloc[:600].reset_index(drop=True), rows.iloc[600:900].reset_index(drop=True)
    return train, holdout, noisy_copy(rows.iloc[900:], schema, seed=2).reset_index(drop=True), schema


def test_map_tasks_runs_in_order_on_the_workers_and_the_tasks_do_not_resubmit(dask_cluster, monkeypatch):
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    assert cluster.map_tasks(_pid, [("a",), ("b",)]) == [("a", os.getpid(), ""), ("b", os.getpid(), "")]
    with cluster.using(dask_cluster.scheduler_address):
        assert cluster.scheduler_address() == dask_cluster.scheduler_address
        remote = cluster.map_tasks(_pid, [(t,) for t in "abcde"])
    assert [t for t, _, _ in remote] == list("abcde")
    assert os.getpid() not in {p for _, p, _ in remote}  # worker processes, not this one
    assert {a for _, _, a in remote} == {""}  # a task runs where it lands
    assert cluster.scheduler_address() == ""


def test_the_resource_names_the_scheduler_over_the_environment_and_restores_it(dask_cluster, monkeypatch):
    monkeypatch.setenv(cluster.SCHEDULER_ENV, "tcp://from-the-environment:8786")
    with DaskCluster(scheduler=dask_cluster.scheduler_address).active():
        assert cluster.scheduler_address() == dask_cluster.scheduler_address
    with DaskCluster().active():  # unset: the environment's
        assert cluster.scheduler_address() == "tcp://from-the-environment:8786"
    with cluster.using(""):  # "" forces this process
        assert cluster.scheduler_address() == ""
    assert cluster.scheduler_address() == "tcp://from-the-environment:8786"


def test_utility_fits_on_the_cluster_equal_the_local_run_exactly(dask_cluster, small, monkeypatch):
    train, holdout, synthetic, schema = small
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    local = utility.tstr(train, holdout, synthetic, schema, seed=3)
    calls = []
    real = cluster.client
    monkeypatch.setattr(cluster, "client", lambda address: calls.append(address) or real(address))
    with cluster.using(dask_cluster.scheduler_address):
        remote = utility.tstr(train, holdout, synthetic, schema, seed=3)
    assert calls  # the fits went to the cluster
    assert any(m.computed for m in local)
    assert _dumped(remote) == _dumped(local)


def _start_drawing() -> None:
    """On a worker: a thread drawing from numpy's global RNG until _stop_drawing, as dask's sizeof does
    in the worker's event loop whenever a DataFrame arrives, at any moment of a running task."""
    _STOP_DRAWING.clear()

    def draw():
        while not _STOP_DRAWING.is_set():
            np.random.random()
            time.sleep(0.05)

    threading.Thread(target=draw, daemon=True).start()


def _stop_drawing() -> None:
    _STOP_DRAWING.set()


def test_dask_sizes_an_object_column_with_numpys_global_rng():
    """Why no attack may draw from numpy's global RNG on a worker: the worker sizes each DataFrame it
    receives (dask.sizeof, in its event-loop thread, also while a task runs) and for an object column
    that draws from the global RNG, moving whatever a task drew next."""
    from dask.sizeof import sizeof

    np.random.seed(0)
    undisturbed = np.random.random()
    np.random.seed(0)
    sizeof(pd.DataFrame({"sex": ["F", "M", "F"]}))
    assert np.random.random() != undisturbed


def test_inference_attacks_per_column_on_the_cluster_equal_the_local_run_exactly(dask_cluster, small, monkeypatch):
    """Each column's attack runs on a worker while another thread there draws from numpy's global RNG
    (test above): the results still equal the undisturbed local run, field for field."""
    train, holdout, synthetic, schema = small
    secrets = [schema.target, "kappa", "sex"]
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    local = attacks.inference(train, holdout, synthetic, schema, n_attacks=100, secrets=secrets, seed=1)
    calls = []
    real = cluster.client
    monkeypatch.setattr(cluster, "client", lambda address: calls.append(address) or real(address))
    workers = real(dask_cluster.scheduler_address)
    workers.run(_start_drawing)
    try:
        with cluster.using(dask_cluster.scheduler_address):
            remote = attacks.inference(train, holdout, synthetic, schema, n_attacks=100, secrets=secrets, seed=1)
    finally:
        workers.run(_stop_drawing)
    assert calls  # the attacks went to the cluster
    assert [m.name for m in local] == [f"inference[{c}]" for c in secrets] + ["inference_max"]
    assert all(m.computed for m in local), [m.error for m in local]
    assert _dumped(remote) == _dumped(local)


def test_linkability_searches_in_slices_on_the_cluster_and_equals_the_local_run_exactly(dask_cluster, small, monkeypatch):
    """The linkability attack's neighbour searches go to the workers, one slice of the targets per
    worker thread, while another thread there draws from numpy's global RNG: the result equals the
    local run, field for field."""
    from synth_pipeline.metrics.privacy import linkability

    train, holdout, synthetic, schema = small
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    local = linkability(train, holdout, synthetic, schema, n_attacks=200, seed=2)
    tasks = []
    real = cluster.map_tasks
    monkeypatch.setattr(cluster, "map_tasks", lambda fn, items, **kw: tasks.append(len(items)) or real(fn, items, **kw))
    workers = cluster.client(dask_cluster.scheduler_address)
    workers.run(_start_drawing)
    try:
        with cluster.using(dask_cluster.scheduler_address):
            remote = linkability(train, holdout, synthetic, schema, n_attacks=200, seed=2)
    finally:
        workers.run(_stop_drawing)
    assert tasks == [2 * 2 * 2]  # (train, holdout targets) x two auxiliary halves x two worker threads
    assert local.computed and local.detail["n_success"] > 0
    assert json.dumps(remote.to_dict(), sort_keys=True) == json.dumps(local.to_dict(), sort_keys=True)
