"""anonymeter singling-out and attribute inference on real FLCHAIN: a fresh real sample must read as
no risk, a copy of train must not; seeded runs repeat exactly; what cannot be computed says why."""

import math

import numpy as np
import pytest
from _flchain import by_name

from synth_pipeline.metrics.attacks import default_secrets, inference, singling_out


@pytest.fixture(scope="module")
def fresh_so(fresh_data):
    train, half, fresh, schema = fresh_data
    return singling_out(train, half, fresh, schema, seed=0)


@pytest.fixture(scope="module")
def fresh_inf(fresh_data):
    train, half, fresh, schema = fresh_data
    return by_name(inference(train, half, fresh, schema, n_attacks=1000, secrets=[schema.target, "kappa"], seed=0))


@pytest.fixture(scope="module")
def copy_inf(data):
    train, holdout, schema = data
    return by_name(inference(train, holdout, train, schema, n_attacks=300, secrets=[schema.target, "kappa"], seed=0))


def test_fresh_sample_singling_out_is_near_zero(fresh_so):
    assert fresh_so.computed, fresh_so.error
    d = fresh_so.detail
    assert d["n_attacks"] == d["n_attacks_requested"] == 300 and d["n_cols"] == 3
    assert fresh_so.value < 0.05 and fresh_so.ci[1] < 0.1, (fresh_so.value, fresh_so.ci, d)
    assert fresh_so.ci[0] <= fresh_so.value <= fresh_so.ci[1]
    # the claims single out real people about as often in train as in the control: that is the point
    assert abs(d["attack_rate"] - d["control_rate"]) < 0.1
    for k in ("attack_rate", "control_rate", "baseline_rate"):
        assert 0.0 <= d[k] <= 1.0


def test_fresh_sample_inference_is_near_zero(fresh_inf):
    target, kappa = fresh_inf["inference[death]"], fresh_inf["inference[kappa]"]
    assert target.computed and kappa.computed
    assert target.value < 0.05 and kappa.value < 0.05
    # the residual's CI is the rates' widened by 1 / (1 - control rate): ~3.5x for death (control
    # ≈ 0.71 for a binary target), so the target's bound is looser than kappa's
    assert kappa.ci[1] < 0.1 and target.ci[1] < 0.15, (kappa.ci, target.ci)
    assert target.detail["n_attacks"] == 1000 and target.detail["regression"] is False
    assert kappa.detail["regression"] is True and kappa.detail["tolerance"] == 0.05
    # a binary target is guessed right ~60% of the time at random: the baseline must say so
    assert 0.5 < target.detail["baseline_rate"] < 0.7


def test_copy_of_train_has_high_inference_risk(copy_inf, fresh_inf):
    target = copy_inf["inference[death]"]
    assert target.value > 0.9 and target.ci[0] > fresh_inf["inference[death]"].ci[1] + 0.3, (target, fresh_inf)
    assert target.detail["attack_rate"] > 0.95 > target.detail["control_rate"]
    assert copy_inf["inference[kappa]"].value > 0.9
    worst = copy_inf["inference_max"]
    assert worst.computed and worst.detail["column"] in ("death", "kappa")
    assert worst.value == max(copy_inf["inference[death]"].value, copy_inf["inference[kappa]"].value)
    assert worst.detail["not_computed"] == {}


def test_copy_of_train_is_singled_out_more_than_fresh_data(data, fresh_so):
    train, holdout, schema = data
    so = singling_out(train, holdout, train, schema, n_attacks=100, seed=0)
    assert so.computed, so.error
    assert so.value > 0.1 and so.ci[0] > fresh_so.ci[1], (so, fresh_so)
    assert so.detail["attack_rate"] > so.detail["control_rate"]


def test_seeded_runs_repeat_exactly(fresh_data):
    train, half, fresh, schema = fresh_data
    a = singling_out(train, half, fresh, schema, n_attacks=30, seed=3)
    b = singling_out(train, half, fresh, schema, n_attacks=30, seed=3)
    assert a == b and a.computed
    x = inference(train, half, fresh, schema, n_attacks=100, seed=3, secrets=["death", "lambda"])
    y = inference(train, half, fresh, schema, n_attacks=100, seed=3, secrets=["death", "lambda"])
    assert x == y and all(m.computed for m in x)


def test_default_secrets_are_the_target_plus_marked_and_passed_columns(data):
    _, _, schema = data
    assert schema.sensitive == ("mgus", "creatinine")  # FLCHAIN's declared sensitive columns
    assert default_secrets(schema) == ["death", "mgus", "creatinine"]
    assert default_secrets(schema, ("kappa", "death", "lambda")) == ["death", "mgus", "creatinine", "kappa", "lambda"]


def test_too_small_or_unattackable_tables_are_missing_with_a_reason(data):
    train, holdout, schema = data
    so = singling_out(train, holdout.head(5), train, schema)
    assert not so.computed and so.passed is False and "holdout has 5 rows" in so.error
    inf = by_name(inference(train, holdout.head(5), train, schema, secrets=["death", "kappa"]))
    assert set(inf) == {"inference[death]", "inference[kappa]", "inference_max"}
    assert all(not m.computed and m.error for m in inf.values())
    assert "holdout has 5 rows" in inf["inference_max"].error

    so = singling_out(train, holdout, train, schema, n_attacks=0)
    assert not so.computed and "n_attacks=0" in so.error

    # a single-class secret and a column the schema lacks: said, not skipped; the rest still runs
    alive = train[train["death"] == "alive"]
    inf = by_name(inference(alive, holdout, alive, schema, n_attacks=50, secrets=["death", "nope", "mgus"]))
    assert "single value" in inf["inference[death]"].error
    assert "not a schema column" in inf["inference[nope]"].error
    assert inf["inference[mgus]"].computed
    worst = inf["inference_max"]
    assert worst.detail["column"] == "mgus" and set(worst.detail["not_computed"]) == {"inference[death]", "inference[nope]"}


def test_query_shortfall_is_reported_not_hidden(data):
    """Three distinct synthetic rows admit at most 3 x C(9, 3) = 252 distinct queries: fewer than
    asked, so the rates are over the queries made and the detail says so."""
    train, holdout, schema = data
    so = singling_out(train, holdout, train.head(3), schema, n_attacks=300, max_attempts=3000)
    assert so.computed, so.error
    assert 0 < so.detail["n_attacks"] < 300 == so.detail["n_attacks_requested"]
    assert "rates are over the queries made" in so.detail["note"]


def test_missing_values_do_not_crash(data):
    train, holdout, schema = data
    rng = np.random.default_rng(0)
    frames = []
    for df in (train.head(800), holdout.head(400), train.tail(800)):
        df = df.copy()
        for c in ("sex", "flc.grp", "age", "kappa", "death"):
            df.loc[rng.random(len(df)) < 0.1, c] = np.nan
        frames.append(df.reset_index(drop=True))
    tr, ho, sy = frames
    assert tr["creatinine"].isna().any()  # FLCHAIN's own missing values, numeric
    so = singling_out(tr, ho, sy, schema, n_attacks=30, seed=0)
    assert so.computed and math.isfinite(so.value), so.error
    inf = inference(tr, ho, sy, schema, n_attacks=50, seed=0, secrets=["death", "kappa", "creatinine", "sex"])
    assert all(m.computed and math.isfinite(m.value) for m in inf), [m.error for m in inf]


def test_declared_sensitive_columns_extend_the_schema_and_are_attacked():
    from synth_pipeline.data import load_dataset

    schema = load_dataset("flchain", sensitive=("age", "mgus", "death")).schema
    assert schema.sensitive == ("mgus", "creatinine", "age")  # declared first; the target is always attacked
    assert default_secrets(schema) == ["death", "mgus", "creatinine", "age"]


def test_inference_gate_advice_on_a_rare_secret_holds_when_rerun():
    """`mgus` is 97% one value: 80 holdout rows cannot tell even a copy from the control's own
    success, so the gate refuses for lack of evidence and names the rows that would; re-run with that
    many, the copy is refused as a leak and a fresh real sample passes."""
    from synth_pipeline.config import Thresholds
    from synth_pipeline.gates import inference_gate

    from _flchain import flchain

    pool, schema = flchain()
    idx = np.random.default_rng(0).permutation(len(pool))
    tr, fresh = pool.iloc[idx[:3000]], pool.iloc[idx[4500:7500]]
    T = Thresholds()

    def gate(hold, syn):
        return inference_gate(inference(tr, hold, syn, schema, secrets=["mgus"], seed=0), T)

    weak = gate(pool.iloc[idx[3000:3080]], tr)
    needed = weak.metrics[0].detail["rows_needed"]
    assert not weak.passed and "not enough evidence on mgus" in weak.reason
    assert 80 < needed <= min(500, len(pool) // 2) and f"about {needed} holdout rows" in weak.reason
    hold = pool.iloc[idx[3000:3000 + needed]]
    again = gate(hold, tr)
    assert not again.passed and "lower bound > 0.25" in again.reason and "evidence" not in again.reason
    assert gate(hold, fresh).passed
