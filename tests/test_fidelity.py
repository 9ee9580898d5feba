"""Fidelity on real FLCHAIN: a fresh real sample scores near 1, broken joint structure or missingness
shows up in the matching score with the culprit listed first, and it stays fast."""

import time

import numpy as np
import pytest
from _flchain import flchain, split

from synth_pipeline.metrics.fidelity import NAMES, column_pair_trends, fidelity_metrics


@pytest.fixture(scope="module")
def data():
    df, schema = flchain()
    train, holdout = split(df, schema)
    return train, holdout, schema


def by_name(results):
    return {m.name: m for m in results}


@pytest.fixture(scope="module")
def fresh(data):
    train, holdout, schema = data
    return by_name(fidelity_metrics(train, holdout, schema, seed=0))


def test_fresh_real_sample_scores_near_one(fresh, data):
    _, _, schema = data
    assert list(fresh) == list(NAMES)
    assert fresh["column_shapes"].value > 0.95
    assert fresh["column_pair_trends"].value > 0.95
    assert fresh["missing_rates"].value > 0.98
    shapes = fresh["column_shapes"].detail["items"]
    assert {d["item"] for d in shapes} == set(schema.names)
    assert [d["score"] for d in shapes] == sorted(d["score"] for d in shapes)  # worst first
    assert {d["metric"] for d in shapes} == {"KSComplement", "TVComplement"}
    pairs = fresh["column_pair_trends"].detail
    assert pairs["n_pairs_total"] == pairs["n_pairs_scored"] == 36
    assert {d["metric"] for d in pairs["items"]} == {"CorrelationSimilarity", "ContingencySimilarity"}


def test_independently_shuffled_columns_keep_shapes_but_lose_pair_trends(data, fresh):
    train, holdout, schema = data
    rng = np.random.default_rng(0)
    shuffled = holdout.apply(lambda c: c.to_numpy()[rng.permutation(len(c))])
    res = by_name(fidelity_metrics(train, shuffled, schema, seed=0))
    assert res["column_shapes"].value == pytest.approx(fresh["column_shapes"].value)
    assert res["column_pair_trends"].value < fresh["column_pair_trends"].value - 0.03
    worst = res["column_pair_trends"].detail["items"][0]
    assert worst["columns"] == ["kappa", "lambda"] and worst["real"] > 0.5 and abs(worst["synthetic"]) < 0.1


def test_lost_missingness_and_constant_columns_are_named_not_fatal(data):
    train, holdout, schema = data
    syn = holdout.assign(creatinine=np.nan, kappa=1.0)
    res = by_name(fidelity_metrics(train, syn, schema, seed=0))
    assert all(m.computed for m in res.values())
    worst_missing = res["missing_rates"].detail["items"][0]
    assert worst_missing["item"] == "creatinine" and worst_missing["synthetic"] == 1.0
    assert any(s["item"] == "creatinine" for s in res["column_shapes"].detail["skipped"])
    skipped_pairs = {s["item"] for s in res["column_pair_trends"].detail["skipped"]}
    assert "kappa × lambda" in skipped_pairs  # correlation undefined for a constant column
    assert res["column_shapes"].detail["worst"] == "kappa"


def test_pair_cap_and_empty_synthetic(data):
    train, holdout, schema = data
    capped = column_pair_trends(train, holdout, schema, seed=0, max_pairs=5, max_rows=500)
    assert capped.detail["n_pairs_scored"] == 5 and capped.detail["n_rows_real"] == 500
    res = fidelity_metrics(train, holdout.iloc[:0], schema, seed=0)
    assert all(not m.computed and "empty" in m.error for m in res)


def test_fast_on_8k_rows(data):
    train, holdout, schema = data
    real = train.sample(8000, replace=True, random_state=0).reset_index(drop=True)
    syn = holdout.sample(8000, replace=True, random_state=1).reset_index(drop=True)
    start = time.perf_counter()
    fidelity_metrics(real, syn, schema, seed=0)
    assert time.perf_counter() - start < 10
