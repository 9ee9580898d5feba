"""TSTR vs TRTR and the augmentation case on real FLCHAIN: real data standing in for synthetic must
score like real data, data with the signal destroyed must not, every score carries a seeded bootstrap
CI, and unscorable inputs must come back as missing, not raise."""

from dataclasses import replace

import numpy as np
import pytest
from _flchain import by_name, split

from synth_pipeline.config import Thresholds
from synth_pipeline.gates import tstr_gate
from sklearn.metrics import average_precision_score, roc_auc_score

from synth_pipeline.metrics.utility import (FAMILIES, augmentation, augmentation_names, tstr, tstr_names,
                                            weighted_auroc_ap)
from synth_pipeline.schema import ColumnSpec

T = Thresholds()
NAMES = tstr_names()


@pytest.fixture(scope="module")
def real_vs_real(data):
    """Half of train as "train", the other half as "synthetic": a perfect generator's sample."""
    train, holdout, schema = data
    a, b = split(train, schema, test_size=0.5, seed=1)
    return by_name(tstr(a, holdout, b, schema, seed=0))


def test_result_names_cover_every_family_and_score():
    assert set(FAMILIES) == {"gbm", "logreg", "rf"}
    assert NAMES[:6] == ["tstr_auroc[gbm]", "trtr_auroc[gbm]", "tstr_auprc[gbm]", "trtr_auprc[gbm]",
                         "auroc_ratio[gbm]", "auprc_ratio[gbm]"]
    assert len(NAMES) == 6 * len(FAMILIES) + 1 and NAMES[-1] == "tstr_ratio"


def test_real_vs_real_scores_ratio_near_one_and_passes(real_vs_real):
    assert [n for n in real_vs_real] == NAMES
    for name, m in real_vs_real.items():
        assert m.computed, m.error
        lo, hi = m.ci
        assert lo <= m.value <= hi and hi - lo < 0.15, name
        if "_auroc[" in name:
            assert 0.75 <= m.value <= 0.95, name  # death within follow-up from age, FLC, creatinine
            assert hi - lo > 0.01, name  # 2.4k holdout rows: a real interval, not a point
        elif "_auprc[" in name:  # well above the 27.5% prevalence a random ranking scores
            assert 0.55 <= m.value <= 0.85, name
        else:
            assert 0.9 <= m.value <= 1.1, name
    assert real_vs_real["tstr_auroc[rf]"].detail["holdout_prevalence"]["dead"] == pytest.approx(0.275, abs=0.01)
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
    assert [(m.value, m.ci) for m in a] == [(m.value, m.ci) for m in b]
    c = tstr(small, holdout, small, replace(schema, positive=None), seed=5)
    assert [m.ci for m in a] != [m.ci for m in c]  # the seed drives the resamples


def test_vectorised_scores_match_sklearn_with_ties_and_weights():
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.3
    score = np.round(rng.random(400) + 0.3 * y, 1)  # heavy ties
    w = rng.integers(0, 3, size=(3, 400)).astype(float)
    auroc, ap = weighted_auroc_ap(y, score, np.vstack([np.ones(400), w]))
    assert auroc[0] == pytest.approx(roc_auc_score(y, score))
    assert ap[0] == pytest.approx(average_precision_score(y, score))
    for i in range(3):
        assert auroc[i + 1] == pytest.approx(roc_auc_score(y, score, sample_weight=w[i]))
        assert ap[i + 1] == pytest.approx(average_precision_score(y, score, sample_weight=w[i]))
    none_positive = weighted_auroc_ap(np.zeros(5, bool), np.arange(5.0), np.ones((1, 5)))
    assert np.isnan(none_positive[0][0]) and np.isnan(none_positive[1][0])


def test_too_few_rows_returns_missing(data):
    train, holdout, schema = data
    res = tstr(train, holdout, train.iloc[:10], schema, seed=0)
    assert [m.name for m in res] == NAMES and all(not m.computed and "too few rows" in m.error for m in res)


@pytest.fixture(scope="module")
def augmented_real(data):
    """Half of train as "train", the other half as "synthetic" whose dead rows are the augmentation."""
    train, holdout, schema = data
    a, b = split(train, schema, test_size=0.5, seed=1)
    return a, b, by_name(augmentation(a, holdout, b, schema, seed=0))


def test_augmentation_with_real_minority_rows_scores_like_real(augmented_real, data):
    a, b, res = augmented_real
    assert list(res) == augmentation_names() and len(res) == 6 * len(FAMILIES)
    for name, m in res.items():
        assert m.computed, m.error
        lo, hi = m.ci
        assert lo <= m.value <= hi, name
        if name.startswith("augmentation_delta"):
            assert abs(m.value) < 0.03, name  # more real-like rows of the minority: no harm, little gain
        elif "_auroc[" in name:
            assert 0.75 <= m.value <= 0.95, name
    d = res["augmented_auroc[gbm]"].detail
    assert d["minority_classes"] == ["dead"]
    # up to balance: 2755 train rows, ~759 dead; the other half holds ~759 dead rows, all of them added
    assert d["synthetic_rows_added"] == {"dead": int((b["death"] == "dead").sum())}
    delta = res["augmentation_delta_auroc[rf]"]
    assert delta.value == pytest.approx(res["augmented_auroc[rf]"].value - res["real_only_auroc[rf]"].value)


def test_augmentation_without_minority_rows_is_missing_and_deterministic(data, augmented_real):
    train, holdout, schema = data
    a, b, res = augmented_real
    none = augmentation(a, holdout, b[b["death"] == "alive"], schema, seed=0)
    assert [m.name for m in none] == augmentation_names()
    assert all(not m.computed and "no rows of the minority class(es) ['dead']" in m.error for m in none)
    small_a, small_b = a.iloc[:800], b.iloc[:800]
    x = augmentation(small_a, holdout, small_b, schema, seed=3)
    y = augmentation(small_a, holdout, small_b, schema, seed=3)
    assert [(m.value, m.ci) for m in x] == [(m.value, m.ci) for m in y]
    assert all(not m.computed and "1 class" in m.error
               for m in augmentation(a.assign(death="alive"), holdout, b, schema, seed=0))


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
    assert all(0.0 <= m.value <= 1.0 for m in res.values() if "ratio" not in m.name)
    assert res["tstr_auprc[gbm]"].detail["holdout_prevalence"].keys() == set(res["tstr_ratio"].detail["classes"])


def test_tables_above_the_caps_are_subsampled_seeded_and_recorded(data, monkeypatch):
    """Large tables: every fit on at most FIT_MAX_ROWS rows, the scoring on at most SCORE_MAX_ROWS
    holdout rows, recorded in the detail, the same sample for the same seed; below the caps nothing
    changes (no subsample key, the scores of the uncapped run)."""
    import synth_pipeline.metrics.utility as utility

    train, holdout, schema = data
    a, b = split(train, schema, test_size=0.5, seed=1)
    full = by_name(tstr(a, holdout, b, schema, seed=0))
    assert "subsample" not in full["tstr_ratio"].detail
    monkeypatch.setattr(utility, "FIT_MAX_ROWS", 800)
    monkeypatch.setattr(utility, "SCORE_MAX_ROWS", 900)
    capped = by_name(tstr(a, holdout, b, schema, seed=0))
    sub = capped["tstr_ratio"].detail["subsample"]
    assert sub["fit_rows"] == {"tstr": 800, "trtr": 800} and sub["scored_holdout_rows"] == 900
    assert capped["tstr_ratio"].detail["n_train"] == len(a)  # the table's own size is still recorded
    assert capped["tstr_auroc[rf]"].value != full["tstr_auroc[rf]"].value
    assert by_name(tstr(a, holdout, b, schema, seed=0))["tstr_auroc[rf]"].value == capped["tstr_auroc[rf]"].value
    aug = by_name(augmentation(a, holdout, b, schema, seed=0))
    assert aug["augmented_auroc[gbm]"].detail["subsample"]["scored_holdout_rows"] == 900
