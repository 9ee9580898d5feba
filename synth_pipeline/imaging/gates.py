"""The image release gates, judged like the tabular ones (synth_pipeline/gates.py): each reads
computed metrics, fills in thresholds and verdicts, and says in one sentence why it passed or refused.
A metric that is absent or was not computed refuses its gate."""

from collections.abc import Sequence

from synth_pipeline.gates import GateResult, metric_value, require_metrics, verdict_sentence, with_verdict
from synth_pipeline.imaging.config import MriThresholds
from synth_pipeline.metrics.base import MetricResult

MRI_GATES = ("mri_memorisation_gate", "mri_fidelity_gate")
SPACES = ("pixel", "feature")


def mri_memorisation_gate(metrics: Sequence[MetricResult], t: MriThresholds) -> GateResult:
    """In pixel AND feature space: memorisation rate ≤ t.memorisation_max and DCR share ≤
    t.dcr_share_max; and no more exact copies of training slices than the holdout has itself."""
    gate = "mri_memorisation_gate"
    names = [f"{kind}_{space}" for space in SPACES for kind in ("memorisation", "dcr_share")]
    found = require_metrics(gate, metrics, (*names, "exact_copies"))
    if isinstance(found, GateResult):
        return found
    checks, judged = [], []
    for name in names:
        limit = t.memorisation_max if name.startswith("memorisation") else t.dcr_share_max
        ok = metric_value(found[name]) <= limit
        judged.append(with_verdict(found[name], limit, ok))
        checks.append((ok, f"{name.replace('_', ' ')} {metric_value(found[name]):.3f} {'≤' if ok else '>'} {limit:.2f}"))
    copies = found["exact_copies"]
    allowed = float(copies.detail.get("holdout_count", 0))
    ok = metric_value(copies) <= allowed
    judged.append(with_verdict(copies, allowed, ok))
    checks.append((ok, f"{int(metric_value(copies))} exact copies of training slices "
                       f"{'≤' if ok else '>'} the holdout's own {int(allowed)}"))
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
