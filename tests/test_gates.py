"""Gate logic on hand-made metric results (the real-data verdicts are in test_privacy / test_utility):
boundaries, readable reasons with the numbers, and refusal whenever evidence is missing."""

import json

import pytest

from synth_pipeline.config import Thresholds
from synth_pipeline.gates import GateResult, dcr_gate, fidelity_gate, inference_gate, linkability_gate, tstr_gate
from synth_pipeline.metrics.base import MetricResult, missing
from synth_pipeline.metrics.distances import newcombe_difference
from synth_pipeline.metrics.evidence import copy_lower, risk_interval

T = Thresholds()


def dcr(mem=0.05, share=0.5, copies=0, holdout_copies=0, rare=0, n=1000, n_hold=500):
    """Hand-made DCR metrics; `copies` / `holdout_copies` copy common training combinations, `rare`
    synthetic rows copy rare ones."""
    diff_ci = list(newcombe_difference(copies, n, holdout_copies, n_hold))
    return [
        MetricResult("memorisation_rate", mem, ci=(mem - 0.01, mem + 0.01)),
        MetricResult("dcr_share", share, ci=(share - 0.03, share + 0.03)),
        MetricResult("exact_copies", copies / n, detail={
            "k": 5, "synthetic_common_count": copies, "synthetic_rare_count": rare, "n_synthetic": n,
            "holdout_common_count": holdout_copies, "holdout_rate": holdout_copies / n_hold, "n_holdout": n_hold,
            "difference": copies / n - holdout_copies / n_hold, "difference_ci": diff_ci}),
        MetricResult("nndr", 0.8),
    ]


def link(value, lo, hi, n=400):
    return MetricResult("linkability", value, ci=(lo, hi), detail={"n_attacks": n})


def counted(name, n, success, control, holdout=None, max_attacks=500, table_rows=None, **detail):
    """A risk metric whose value and CI are anonymeter's for these counts (as the metrics compute them)."""
    value, lo, hi = risk_interval(n, success, control)
    return MetricResult(name, value, ci=(lo, hi), detail={
        "n_attacks": n, "n_success": success, "n_control_success": control, "control_rate": control / n,
        "holdout_rows": n if holdout is None else holdout, "max_attacks": max_attacks,
        "table_rows": 2 * max_attacks if table_rows is None else table_rows, **detail})


def ratio(value, tstr=0.8, trtr=0.85):
    return MetricResult("tstr_ratio", value, detail={"best_tstr": tstr, "best_tstr_family": "gbm",
                                                     "best_trtr": trtr, "best_trtr_family": "logreg"})


def test_dcr_gate_passes_at_the_thresholds_and_fills_them_in():
    g = dcr_gate(dcr(mem=0.10, share=0.60, copies=2, holdout_copies=1), T)
    assert g.passed, g.reason
    assert [(m.name, m.threshold, m.passed) for m in g.metrics] == [
        ("memorisation_rate", 0.10, True), ("dcr_share", 0.60, True), ("exact_copies", 0.002, True)]
    assert g.reason.startswith("dcr_gate passed:") and "0.100 ≤ 0.10" in g.reason


@pytest.mark.parametrize(
    ("kw", "text"),
    [({"mem": 0.11}, "memorisation rate 0.110 > 0.10"),
     ({"share": 0.61}, "DCR share 0.610 > 0.60"),
     ({"copies": 30}, "copies of common combinations 0.0300 (30 rows) vs the holdout's 0.0000, difference CI "
                      "+0.0183 to +0.0425 is above 0"),
     ({"rare": 1}, "1 rows copy a training row fewer than 5 patients share; copies of common combinations 0.0000 "
                   "(0 rows) vs the holdout's 0.0000, difference CI -0.0076 to +0.0038 includes or is below 0")],
)
def test_dcr_gate_refuses_on_each_condition_and_says_which(kw, text):
    g = dcr_gate(dcr(**kw), T)
    assert not g.passed
    assert g.reason.startswith(f"dcr_gate refused: {text}; holds:")


def test_dcr_gate_judges_chance_copies_of_common_rows_with_an_interval():
    """The issue's clinical table: 3 of 2,100 synthetic rows vs 1 of 900 holdout rows equal training
    rows. "rate ≤ the holdout's" refused it (0.0014 > 0.0011); the Newcombe CI of the difference
    spans 0, so it passes, while a generator copying common rows at twice the holdout's rate with
    enough rows to show it is refused."""
    chance = dcr_gate(dcr(copies=3, holdout_copies=1, n=2100, n_hold=900), T)
    assert chance.passed, chance.reason
    lo, hi = chance.metrics[2].detail["difference_ci"]
    assert lo < 0 < hi
    twice = dcr_gate(dcr(copies=400, holdout_copies=100, n=2000, n_hold=1000), T)
    assert not twice.passed and "is above 0" in twice.reason


def test_newcombe_difference_matches_the_published_example():
    """Newcombe (1998), Table II, example (a): 56/70 vs 48/80 gives 0.0524 to 0.3339 (method 10)."""
    lo, hi = newcombe_difference(56, 70, 48, 80)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)


def test_linkability_gate_pass_refuse_and_not_enough_evidence():
    ok = linkability_gate(link(0.01, 0.0, 0.05), T)
    assert ok.passed and "upper bound < 0.09" in ok.reason
    assert ok.metrics[0].threshold == 0.09 and ok.metrics[0].passed
    high = linkability_gate(link(0.45, 0.40, 0.50), T)
    assert not high.passed and "estimate ≥ 0.09" in high.reason and "evidence" not in high.reason
    unsure_metric = counted("linkability", 100, 6, 2, max_attacks=1000)  # risk 0.04, upper bound ≥ 0.09
    assert unsure_metric.value < 0.09 <= unsure_metric.ci[1]
    unsure = linkability_gate(unsure_metric, T)
    needed = unsure.metrics[0].detail["rows_needed"]
    assert not unsure.passed and 100 < needed <= 1000
    assert "not enough evidence" in unsure.reason and f"about {needed} holdout rows" in unsure.reason
    assert f"holdout_fraction ≥ {needed / 2000:.2f}" in unsure.reason
    # the advice is where anonymeter's interval would be with that many attacks at the same rates
    assert risk_interval(needed, round(needed * 0.06), round(needed * 0.02))[2] < 0.09
    # the gate's own threshold decides, not the one the metric was computed with
    stricter = linkability_gate(unsure_metric, T.with_overrides(linkability_ci_high_max=0.07))
    assert stricter.metrics[0].detail["rows_needed"] > needed


def test_linkability_advice_never_exceeds_the_table_and_names_the_setting():
    small = linkability_gate(counted("linkability", 100, 6, 2, max_attacks=120), T)
    assert not small.passed and small.metrics[0].detail["rows_needed"] is None
    assert "the table is too small: even 120 attacks (half of its 240 rows as holdout)" in small.reason
    capped = linkability_gate(counted("linkability", 100, 6, 2, holdout=2000, max_attacks=3000), T)
    assert f"raise link_attacks to {capped.metrics[0].detail['rows_needed']}" in capped.reason


def test_inference_gate_passes_refuses_a_leak_and_names_the_column():
    fine = [counted("inference[death]", 500, 330, 320), counted("inference[mgus]", 500, 490, 485)]
    g = inference_gate(fine, T)
    assert g.passed, g.reason
    assert [(m.threshold, m.passed) for m in g.metrics] == [(0.25, True), (0.25, True)]
    leak = counted("inference[creatinine]", 500, 400, 100)  # risk 0.75
    g = inference_gate([*fine, leak], T)
    assert not g.passed and g.reason.startswith("inference_gate refused: creatinine risk 0.7")
    assert "lower bound > 0.25" in g.reason and "holds: death" in g.reason
    assert g.metrics[2].passed is False and g.metrics[2].detail["copy_lower_bound"] > 0.9
    record = g.to_dict()
    assert "lower end of its 95% CI ≤ 0.25" in record["rule"] and record["metrics"][2]["threshold"] == 0.25


def test_inference_gate_refuses_an_attack_too_weak_to_catch_a_copy():
    # 40 attacks on a secret the control already guesses right 95% of the time: a copy would read a
    # lower bound near 0, so a pass would mean nothing.
    weak = counted("inference[hemo]", 40, 38, 38, max_attacks=500)
    assert copy_lower(40, 38) <= 0.25
    g = inference_gate([weak], T)
    needed = g.metrics[0].detail["rows_needed"]
    assert not g.passed and "not enough evidence on hemo" in g.reason and 40 < needed <= 500
    assert copy_lower(needed, round(needed * 0.95)) > 0.25  # the advice holds for the planned rates
    tiny = inference_gate([counted("inference[hemo]", 40, 38, 38, max_attacks=60)], T)
    assert "the table is too small" in tiny.reason and tiny.metrics[0].detail["rows_needed"] is None
    capped = inference_gate([counted("inference[hemo]", 40, 39, 39, max_attacks=500, table_rows=5000)], T)
    assert "more rows would not help: even 500 attacks" in capped.reason
    assert inference_gate([weak], T.with_overrides(inference_ci_low_max=1.0)).passed  # 1 switches the gate off


def test_inference_gate_refuses_without_evidence():
    assert "no inference[<column>] metric" in inference_gate([MetricResult("inference_max", 0.0)], T).reason
    g = inference_gate([counted("inference[cens]", 500, 330, 320), missing("inference[race]", "anonymeter failed")], T)
    assert not g.passed and "metric inference[race] was not computed (anonymeter failed)" in g.reason


def test_tstr_gate_boundary():
    assert tstr_gate([ratio(0.90)], T).passed
    g = tstr_gate([ratio(0.899, tstr=0.70, trtr=0.85)], T)
    assert not g.passed
    assert g.reason == ("tstr_gate refused: best TSTR AUROC 0.700 (gbm) < 0.90 × best TRTR AUROC 0.850 (logreg), "
                        "ratio 0.899.")
    assert g.metrics[0].threshold == 0.90 and g.metrics[0].passed is False


@pytest.mark.parametrize(
    ("gate", "metric_name"),
    [(lambda ms: dcr_gate(ms, T), "dcr_share"),
     (lambda ms: linkability_gate(ms[0], T), "linkability"),
     (lambda ms: tstr_gate(ms, T), "tstr_ratio"),
     (lambda ms: inference_gate(ms, T), "inference[death]")],
)
def test_a_missing_metric_refuses_every_gate(gate, metric_name):
    why = "holdout has 4 rows; at least 10 are needed"
    others = [m for m in dcr() if m.name != metric_name] if metric_name == "dcr_share" else []
    g = gate([missing(metric_name, why), *others])
    assert isinstance(g, GateResult) and not g.passed
    assert f"metric {metric_name} was not computed ({why})" in g.reason


def test_absent_or_nan_metrics_refuse():
    g = dcr_gate(dcr()[:2], T)
    assert not g.passed and "metric exact_copies was not provided" in g.reason
    assert not tstr_gate([], T).passed
    assert not tstr_gate([ratio(float("nan"))], T).passed
    assert "no confidence interval" in linkability_gate(MetricResult("linkability", 0.0), T).reason


def test_gate_result_serialises():
    g = dcr_gate(dcr(), T)
    d = json.loads(json.dumps(g.to_dict()))
    assert d["gate"] == "dcr_gate" and d["passed"] is True and len(d["metrics"]) == 3
    assert d["metrics"][0]["threshold"] == 0.10


def test_sensitive_columns_and_the_inference_threshold_in_the_config():
    from synth_pipeline.config import RunConfig, gate_settings_sha256
    from synth_pipeline.errors import BadInput

    cfg = RunConfig.from_dict({"sensitive_columns": ["age"], "thresholds": {"inference_ci_low_max": 0.2}})
    assert cfg.sensitive_columns == ("age",) and cfg.to_dict()["sensitive_columns"] == ["age"]
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert gate_settings_sha256(cfg) != gate_settings_sha256(cfg.with_overrides(sensitive_columns=()))
    with pytest.raises(BadInput, match="inference_ci_low_max: Input should be less than or equal to 1"):
        RunConfig.from_dict({"thresholds": {"inference_ci_low_max": 1.5}})


def fid(shapes, trends, floor_shapes=0.98, floor_trends=0.96):
    return [MetricResult("column_shapes", shapes), MetricResult("column_pair_trends", trends),
            MetricResult("column_shapes_floor", floor_shapes), MetricResult("column_pair_trends_floor", floor_trends)]


def test_fidelity_gate_refuses_below_the_floor_minus_the_margin_and_says_which():
    assert fidelity_gate(fid(0.98 - T.fidelity_shape_margin_max, 0.96 - T.fidelity_trend_margin_max), T).passed
    collapsed = fidelity_gate(fid(0.755, 0.574, 0.977, 0.942), T)  # issue 14's collapsed diffusion, measured
    assert not collapsed.passed
    assert "pair trends 0.574 < 0.692 (floor 0.942 − 0.25)" in collapsed.reason and "holds: column shapes" in collapsed.reason
    trends = next(m for m in collapsed.metrics if m.name == "column_pair_trends")
    assert trends.threshold == pytest.approx(0.692) and trends.passed is False
    assert not fidelity_gate(fid(0.70, 0.95), T).passed  # shapes alone can refuse
    tight = T.with_overrides(fidelity_trend_margin_max=0.0)
    assert not fidelity_gate(fid(0.98, 0.95), tight).passed and fidelity_gate(fid(0.98, 0.96), tight).passed


def test_fidelity_gate_refuses_without_its_floor():
    no_floor = fidelity_gate(fid(0.99, 0.99)[:2], T)
    assert not no_floor.passed and "column_shapes_floor was not provided" in no_floor.reason
    broken = fidelity_gate(fid(0.99, 0.99)[:3] + [missing("column_pair_trends_floor", "holdout empty")], T)
    assert not broken.passed and "holdout empty" in broken.reason
