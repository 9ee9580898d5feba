"""A refusal says what to try: the advice fits the failure and names a measured alternative."""

from synth_pipeline.remedies import ROW_COPYING, remedy


def test_a_row_copying_generator_is_sent_to_a_model_based_one():
    for gen in sorted(ROW_COPYING):
        text = remedy("dcr_gate", reason="dcr_gate refused: memorisation rate 1.000 > 0.10", generator=gen)
        assert "--generator gaussian_copula" in text and gen in text


def test_the_advice_never_names_the_generator_that_just_failed():
    for gate in ("dcr_gate", "tstr_gate", "inference_gate", "fidelity_gate"):
        for gen in ("gaussian_copula", "diffusion", "tvae"):
            assert f"--generator {gen}" not in remedy(gate, reason="refused", generator=gen)


def test_lack_of_evidence_asks_for_rows_only_when_a_checked_number_exists():
    reason = "linkability_gate refused, not enough evidence: linkability risk 0.010 (95% CI 0.000–0.120)"
    with_rows = remedy("linkability_gate", reason=reason, generator="gaussian_copula", detail={"rows_needed": 640})
    without = remedy("linkability_gate", reason=reason, generator="gaussian_copula", detail={})
    assert "640" in with_rows and "holdout rows" in with_rows
    assert "too small" in without and "rows would be needed" not in without


def test_a_collapsed_candidate_is_sent_to_the_high_fidelity_generator_naming_the_worst_column():
    reason = "fidelity_gate refused: column shapes 0.700 < 0.730 (floor 0.980 − 0.25); holds: pair trends"
    text = remedy("fidelity_gate", reason=reason, generator="tvae", detail={"worst": "kappa"})
    assert "--generator diffusion" in text and "'kappa'" in text and "collapsed" in text
    trends_only = remedy("fidelity_gate", reason="fidelity_gate refused: pair trends 0.5 < 0.69", generator="tvae",
                         detail={"worst": "kappa"})
    assert "kappa" not in trends_only


def test_a_model_based_generator_refused_for_closeness_is_also_pointed_at_the_near_copy_floor():
    text = remedy("dcr_gate", reason="dcr_gate refused: DCR share 0.560 > 0.53", generator="diffusion")
    assert "near_copy_quantile" in text and "--generator gaussian_copula" in text
    assert "near_copy_quantile" not in remedy("dcr_gate", reason="refused", generator="copy")  # no floor fixes a copy
