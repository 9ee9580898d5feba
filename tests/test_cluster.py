"""The heavy steps' splittable work (the utility model fits) runs as tasks on a dask.distributed
cluster when one is configured — a LocalCluster here, a scheduler address in
production — and gives exactly the local results; without one, everything runs in this process."""

import json
import os

import pytest

from resources import DaskCluster
from synth_pipeline import cluster
from synth_pipeline.metrics import utility


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
