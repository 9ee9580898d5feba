"""The exact nearest-neighbour engine sharded over a dask.distributed cluster (a LocalCluster here, a
remote scheduler address in production) returns what the single-process engine returns, bit for bit."""

import numpy as np
import pytest

from synth_pipeline import cluster as sp_cluster
from synth_pipeline import neighbors
from synth_pipeline.neighbors import nearest, sharded_nearest


@pytest.fixture(scope="module")
def cluster(dask_cluster):
    return dask_cluster


def _data():
    rng = np.random.default_rng(3)
    reference = rng.standard_normal((5000, 12))
    reference[10:40] = reference[10]  # duplicated reference rows: ties across shard boundaries
    query = rng.standard_normal((700, 12))
    query[:20] = reference[rng.choice(5000, 20, replace=False)]  # exact copies: distance 0.0
    query[20:25] = reference[10]
    return query, reference


@pytest.mark.parametrize("shards", [2, 7])
def test_sharded_search_equals_the_single_process_engine_bit_for_bit(cluster, shards):
    query, reference = _data()
    local = nearest(query, reference, k=3, scheduler="")
    client = sp_cluster.client(cluster.scheduler_address)
    sharded = sharded_nearest(query, reference, k=3, client=client, shards=shards)
    assert np.array_equal(local[0], sharded[0]) and np.array_equal(local[1], sharded[1])
    assert (sharded[0][:20, 0] == 0.0).all()


def test_the_scheduler_switch_routes_every_caller_to_the_cluster(cluster, monkeypatch):
    query, reference = _data()
    local = nearest(query, reference, k=2, scheduler="")
    calls = []
    real = neighbors.sharded_nearest
    monkeypatch.setattr(neighbors, "sharded_nearest", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    monkeypatch.setenv(sp_cluster.SCHEDULER_ENV, cluster.scheduler_address)
    remote = nearest(query, reference, k=2)
    assert calls and np.array_equal(local[0], remote[0]) and np.array_equal(local[1], remote[1])


def test_faiss_candidates_with_our_float64_rerank_give_the_same_exact_answer():
    query, reference = _data()
    ours = nearest(query, reference, k=2, backend="torch", scheduler="")
    via_faiss = nearest(query, reference, k=2, backend="faiss", scheduler="")
    assert np.array_equal(ours[0], via_faiss[0]) and np.array_equal(ours[1], via_faiss[1])
