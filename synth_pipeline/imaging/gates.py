"""The image release gates, judged like the tabular ones (synth_pipeline/gates.py): each reads
computed metrics, fills in thresholds and verdicts, and says in one sentence why it passed or refused.
A metric that is absent or was not computed refuses its gate."""

from collections.abc import Sequence

from synth_pipeline.gates import GateResult, metric_value, require_metrics, verdict_sentence, with_verdict
from synth_pipeline.imaging.config import MriThresholds
from synth_pipeline.metrics.base import MetricResult

MRI_GATES = ("mri_memorisation_gate", "mri_fidelity_gate")
SPACES = ("pixel", "feature")


def _subject_ci(m: MetricResult) -> str:
    """' (95% CI lo-hi over n subjects)' for a rate with a subject-bootstrap interval, else ''."""
    if m.ci is None or "holdout_subjects" not in m.detail:
        return ""
    return f" (95% CI {m.ci[0]:.3f}–{m.ci[1]:.3f} over {m.detail['holdout_subjects']} holdout subjects)"


def mri_memorisation_gate(metrics: Sequence[MetricResult], t: MriThresholds) -> GateResult:
    """Memorisation rate ≤ t.memorisation_max in pixel AND feature space (the share of synthetic slices
    nearer a training slice than 95% of real holdout slices are), and an exact-copy rate no higher
    than the holdout's own (`detail["holdout_rate"]`, 0 when absent).

    The DCR share is reported, not gated, for images: a sample far from every real slice is nearer to
    whichever subjects happen to be most central, so it measures subject geometry, not memorisation
    (a 5-epoch R3GAN on 8 pseudo-cohort subjects scored pixel DCR share 1.00 with memorisation 0.00).

    The verdict reads the point rate, as the tabular memorisation gate does, and states its
    subject-bootstrap CI so a reader sees how few subjects stand behind it (benchmarks/MRI.md)."""
    gate = "mri_memorisation_gate"
    names = [f"memorisation_{space}" for space in SPACES]
    found = require_metrics(gate, metrics, (*names, "exact_copies"))
    if isinstance(found, GateResult):
        return found
    checks, judged = [], []
    for name in names:
        ok = metric_value(found[name]) <= t.memorisation_max
        judged.append(with_verdict(found[name], t.memorisation_max, ok))
        checks.append((ok, f"{name.replace('_', ' ')} {metric_value(found[name]):.3f}{_subject_ci(found[name])} "
                           f"{'≤' if ok else '>'} {t.memorisation_max:.2f}"))
    copies = found["exact_copies"]
    allowed = float(copies.detail.get("holdout_rate", 0.0))
    ok = metric_value(copies) <= allowed
    judged.append(with_verdict(copies, allowed, ok))
    checks.append((ok, f"exact copies of training slices {metric_value(copies):.3f} "
                       f"({copies.detail.get('exact_count', '?')} slices) {'≤' if ok else '>'} "
                       f"the holdout's own rate {allowed:.3f}"))
    passed, reason = verdict_sentence(gate, checks)
    return GateResult(gate, passed, reason, tuple(judged))


def mri_fidelity_gate(metrics: Sequence[MetricResult], t: MriThresholds) -> GateResult:
    """FID(synthetic, holdout) / FID(noise reference, holdout) ≤ t.fid_ratio_max: the slices must be
    far closer to real ones than structured noise is. Off (always passes, says so) when None."""
    gate = "mri_fidelity_gate"
    found = require_metrics(gate, metrics, ("fid_ratio",))
    if isinstance(found, GateResult):
        return found
    ratio = found["fid_ratio"]
    if t.fid_ratio_max is None:
        return GateResult(gate, True, f"{gate} passed: switched off (fid_ratio {metric_value(ratio):.3f} not judged).",
                          (ratio,))
    ok = metric_value(ratio) <= t.fid_ratio_max
    passed, reason = verdict_sentence(gate, [(ok, f"FID ratio to the noise reference {metric_value(ratio):.3f} "
                                           f"{'≤' if ok else '>'} {t.fid_ratio_max:.2f}")])
    return GateResult(gate, passed, reason, (with_verdict(ratio, t.fid_ratio_max, ok),))


def judge_all(metrics: Sequence[MetricResult], t: MriThresholds) -> list[GateResult]:
    return [mri_memorisation_gate(metrics, t), mri_fidelity_gate(metrics, t)]
