"""TSTR vs TRTR on real FLCHAIN: real data standing in for synthetic must score like real data, data
with the signal destroyed must not, and unscorable inputs must come back as missing, not raise."""

from dataclasses import replace

import numpy as np
import pytest
from _flchain import flchain, split

from synth_pipeline.config import Thresholds
from synth_pipeline.gates import tstr_gate
from synth_pipeline.metrics.utility import FAMILIES, tstr
from synth_pipeline.schema import ColumnSpec

T = Thresholds()
NAMES = [f"{k}_auroc[{f}]" for f in FAMILIES for k in ("tstr", "trtr")] + ["tstr_ratio"]


@pytest.fixture(scope="module")
def data():
    df, schema = flchain()
    train, holdout = split(df, schema)
    return train, holdout, schema


def by_name(results):
    return {m.name: m for m in results}


@pytest.fixture(scope="module")
def real_vs_real(data):
    """Half of train as "train", the other half as "synthetic": a perfect generator's sample."""
    train, holdout, schema = data
    a, b = split(train, schema, test_size=0.5, seed=1)
    return by_name(tstr(a, holdout, b, schema, seed=0))


def test_real_vs_real_scores_ratio_near_one_and_passes(real_vs_real):
    assert [n for n in real_vs_real] == NAMES
    for name, m in real_vs_real.items():
        assert m.computed, m.error
        if name != "tstr_ratio":
            assert 0.75 <= m.value <= 0.95, name  # death within follow-up from age, FLC, creatinine
    ratio = real_vs_real["tstr_ratio"]
    assert 0.95 <= ratio.value <= 1.05
    assert ratio.detail["positive"] == "dead" and set(ratio.detail["families"]) == set(FAMILIES)
    gate = tstr_gate(list(real_vs_real.values()), T)
    assert gate.passed, gate.reason
    assert gate.metrics[0].threshold == T.tstr_ratio_min and gate.metrics[0].passed


def test_signal_free_synthetic_is_refused(data):
    train, holdout, schema = data
    rng = np.random.default_rng(0)
    shuffled = train.assign(death=train["death"].to_numpy()[rng.permutation(len(train))])
    res = by_name(tstr(train, holdout, shuffled, schema, seed=0))
    assert all(abs(res[f"tstr_auroc[{f}]"].value - 0.5) < 0.07 for f in FAMILIES)
    assert res["tstr_ratio"].value < 0.7
    gate = tstr_gate(list(res.values()), T)
    assert not gate.passed and "refused" in gate.reason and "<" in gate.reason


def test_single_class_synthetic_returns_missing_and_the_gate_refuses(data):
    train, holdout, schema = data
    res = tstr(train, holdout, train.assign(death="alive"), schema, seed=0)
    assert [m.name for m in res] == NAMES
    assert all(not m.computed and "1 class" in m.error for m in res)
    gate = tstr_gate(res, T)
    assert not gate.passed and "tstr_ratio was not computed" in gate.reason and "1 class" in gate.reason


def test_class_absent_from_holdout_returns_missing(data):
    train, holdout, schema = data
    res = tstr(train, holdout[holdout["death"] == "alive"], train, schema, seed=0)
    assert all(not m.computed and "holdout lacks" in m.error for m in res)


def test_synthetic_with_a_class_unknown_to_train_returns_missing(data):
    train, holdout, schema = data
    odd = train.copy()
    odd.loc[:10, "death"] = "zombie"
    res = tstr(train, holdout, odd, schema, seed=0)
    assert all(not m.computed and "zombie" in m.error for m in res)


def test_minority_class_is_the_fallback_positive_and_results_are_deterministic(data):
    train, holdout, schema = data
    small = train.iloc[:1500]
    a = tstr(small, holdout, small, replace(schema, positive=None), seed=4)
    b = tstr(small, holdout, small, replace(schema, positive=None), seed=4)
    assert a[-1].detail["positive"] == "dead"  # 28% of FLCHAIN died during follow-up
    assert [m.value for m in a] == [m.value for m in b]


def test_numeric_zero_one_target_matches_its_positive_label(data):
    train, holdout, schema = data
    cols = tuple(ColumnSpec("death", "integer") if c.name == "death" else c for c in schema.columns)
    numeric = replace(schema, columns=cols, positive="1")
    as01 = [df.assign(death=(df["death"] == "dead").astype(float)) for df in (train.iloc[:1500], holdout)]
    res = by_name(tstr(as01[0], as01[1], as01[0], numeric, seed=0))
    assert res["tstr_ratio"].computed and res["tstr_ratio"].detail["positive"] == "1"
    assert res["tstr_auroc[logreg]"].value > 0.75


def test_multiclass_uses_macro_one_vs_rest_and_tolerates_a_class_missing_from_synthetic(data):
    train, holdout, schema = data
    multi = replace(schema, target="sample.yr", positive=None)
    small = train.iloc[:2000]
    lacking = small[small["sample.yr"] != "2002"]
    res = by_name(tstr(small, holdout, lacking, multi, seed=0))
    assert res["tstr_ratio"].computed, res["tstr_ratio"].error
    assert res["tstr_ratio"].detail["average"] == "macro one-vs-rest"
    assert len(res["tstr_ratio"].detail["classes"]) == 9
    assert res["tstr_ratio"].detail["classes_absent_from_synthetic"] == ["2002"]
    assert all(0.0 <= m.value <= 1.0 for m in res.values() if m.name != "tstr_ratio")
