"""Fidelity on real FLCHAIN: a fresh real sample scores near 1 (C2ST near 0.5), broken joint structure
or missingness shows up in the matching score with the culprit listed first, and it stays fast."""

import time

import numpy as np
import pytest
from _flchain import by_name, noisy_copy, split

from synth_pipeline.metrics.fidelity import NAMES, c2st, column_pair_trends, fidelity_metrics


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
    for name in ("column_pair_trends", "missing_rates"):
        scores = [d["score"] for d in fresh[name].detail["items"]]
        assert scores == sorted(scores), name  # worst first


def test_c2st_cannot_tell_fresh_real_rows_apart(fresh, data):
    train, _, schema = data
    m = fresh["c2st"]
    assert list(NAMES)[-1] == "c2st" and m.computed
    assert 0.44 < m.value < 0.56 and m.ci[0] <= m.value <= m.ci[1] and m.ci[0] < 0.5 < m.ci[1]
    assert len(m.detail["fold_auroc"]) == 5 and m.detail["n_per_side"] == 2363  # balanced: the smaller side
    features = m.detail["features"]
    assert {d["item"] for d in features} == set(schema.names)
    assert [d["importance"] for d in features] == sorted((d["importance"] for d in features), reverse=True)
    assert all(abs(d["importance"]) < 0.03 for d in features)  # nothing gives a real row away
    a, b = split(train, schema, test_size=0.5, seed=1)
    halves = c2st(a, b, schema, seed=0)
    assert 0.44 < halves.value < 0.56


def test_c2st_sees_broken_joints_and_names_the_culprit(data):
    train, holdout, schema = data
    rng = np.random.default_rng(0)
    shuffled = holdout.apply(lambda c: c.to_numpy()[rng.permutation(len(c))])  # marginals kept, joints gone
    m = c2st(train, shuffled, schema, seed=0)
    assert m.value > 0.85 and m.ci[0] > 0.6
    assert set(m.detail["top_features"][:3]) == {"flc.grp", "kappa", "lambda"}  # FLC group is cut on kappa+lambda
    noisy = c2st(train, noisy_copy(holdout, schema), schema, seed=0)  # creatinine loses its 0.1 mg/dL grid
    assert noisy.value > 0.8 and noisy.detail["worst"] == "creatinine"


def test_c2st_is_seeded_and_says_why_it_cannot_run(data):
    train, holdout, schema = data
    small_real, small_syn = train.iloc[:600], holdout.iloc[:900]
    a, b = c2st(small_real, small_syn, schema, seed=2), c2st(small_real, small_syn, schema, seed=2)
    assert (a.value, a.ci, a.detail) == (b.value, b.ci, b.detail) and a.detail["n_per_side"] == 600
    assert c2st(small_real, small_syn, schema, seed=3).value != a.value
    few = c2st(train, holdout.iloc[:30], schema, seed=0)
    assert not few.computed and "too few rows" in few.error
    odd = holdout.iloc[:600].assign(age="old")  # a numeric column stored as text
    m = c2st(small_real, odd, schema, seed=0)
    assert m.computed and m.detail["unsupported"][0]["item"] == "age"
    assert "age" not in {d["item"] for d in m.detail["features"]}


def test_independently_shuffled_columns_keep_shapes_but_lose_pair_trends(data, fresh):
    train, holdout, schema = data
    rng = np.random.default_rng(0)
    shuffled = holdout.apply(lambda c: c.to_numpy()[rng.permutation(len(c))])
    res = by_name(fidelity_metrics(train, shuffled, schema, seed=0))
    assert res["column_shapes"].value == pytest.approx(fresh["column_shapes"].value)
    assert res["column_pair_trends"].value < fresh["column_pair_trends"].value - 0.03
    worst = res["column_pair_trends"].detail["items"][0]
    assert worst["columns"] == ["kappa", "lambda"] and worst["real"] > 0.5 and abs(worst["synthetic"]) < 0.1
    assert res["c2st"].value > 0.85


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
    start = time.process_time()  # CPU seconds of this process: other jobs on a shared machine don't count
    fidelity_metrics(real, syn, schema, seed=0)
    assert time.process_time() - start < 10
