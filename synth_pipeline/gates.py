"""The three release gates (DESIGN.md, Gate): each reads computed metrics, fills in their threshold
and verdict, and says in one sentence why it passed or refused. A metric that is absent or could not
be computed refuses its gate: no evidence is never read as good evidence."""

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from synth_pipeline.config import Thresholds
from synth_pipeline.metrics.base import MetricResult
from synth_pipeline.metrics.privacy import rows_needed


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    reason: str
    metrics: tuple[MetricResult, ...]

    def to_dict(self) -> dict:
        return {"gate": self.gate, "passed": self.passed, "reason": self.reason,
                "metrics": [m.to_dict() for m in self.metrics]}

    @classmethod
    def from_dict(cls, d: dict) -> "GateResult":
        """A gate result as stored (manifest, refusal record, check metadata); extra keys ignored."""
        return cls(gate=str(d.get("gate", "")), passed=bool(d.get("passed")), reason=str(d.get("reason", "")),
                   metrics=tuple(MetricResult.from_dict(m) for m in d.get("metrics") or ()))


def _unusable(m: MetricResult | None, name: str) -> str | None:
    """Why a metric cannot be judged, or None when it can."""
    if m is None:
        return f"metric {name} was not provided"
    if not m.computed:
        return f"metric {name} was not computed ({m.error or 'no value'})"
    if m.value is None or not math.isfinite(m.value):
        return f"metric {name} is {m.value}"
    return None


def require_metrics(gate: str, metrics: Sequence[MetricResult], names: Sequence[str]) -> dict[str, MetricResult] | GateResult:
    """The named metrics, or the refusal that names each one absent or not computed and why."""
    found = {n: next((m for m in metrics if m.name == n), None) for n in names}
    problems = [p for n, m in found.items() if (p := _unusable(m, n))]
    if problems:
        return GateResult(gate, False, f"{gate} refused: " + "; ".join(problems) + ".",
                          tuple(m for m in found.values() if m is not None))
    return {n: m for n, m in found.items() if m is not None}


def metric_value(m: MetricResult) -> float:
    """The value of a metric `require_metrics` has accepted (computed, finite)."""
    return float(m.value if m.value is not None else math.nan)


def with_verdict(m: MetricResult, threshold: float, passed: bool) -> MetricResult:
    return replace(m, threshold=threshold, passed=passed)


def verdict_sentence(gate: str, checks: Sequence[tuple[bool, str]]) -> tuple[bool, str]:
    """"<gate> passed: a, b." or "<gate> refused: failing checks; holds: the others." (numbers included)."""
    passed = all(ok for ok, _ in checks)
    if passed:
        return True, f"{gate} passed: " + ", ".join(text for _, text in checks) + "."
    failing = ", ".join(text for ok, text in checks if not ok)
    holding = ", ".join(text for ok, text in checks if ok)
    return False, f"{gate} refused: {failing}" + (f"; holds: {holding}." if holding else ".")


def dcr_gate(metrics: Sequence[MetricResult], t: Thresholds) -> GateResult:
    """(a) memorisation ≤ t.memorisation_max, (b) DCR share ≤ t.dcr_share_max, (c) exact copies
    judged by what they reveal: no copy of a training combination fewer than k training rows share,
    and copies of common ones not more frequent than the holdout's own matches (the lower end of the
    95% Newcombe CI of the difference ≤ 0)."""
    gate = "dcr_gate"
    found = require_metrics(gate, metrics, ("memorisation_rate", "dcr_share", "exact_copies"))
    if isinstance(found, GateResult):
        return found
    mem, share, exact = (metric_value(found[n]) for n in ("memorisation_rate", "dcr_share", "exact_copies"))
    d = found["exact_copies"].detail
    holdout_rate, (diff_lo, diff_hi), rare, k = d["holdout_rate"], d["difference_ci"], d["synthetic_rare_count"], d["k"]
    ok = (mem <= t.memorisation_max, share <= t.dcr_share_max, rare == 0 and diff_lo <= 0)
    judged = (
        with_verdict(found["memorisation_rate"], t.memorisation_max, ok[0]),
        with_verdict(found["dcr_share"], t.dcr_share_max, ok[1]),
        with_verdict(found["exact_copies"], holdout_rate, ok[2]),
    )
    common = (f"copies of common combinations {exact:.4f} ({d['synthetic_common_count']} rows) vs the holdout's "
              f"{holdout_rate:.4f}, difference CI {diff_lo:+.4f} to {diff_hi:+.4f} "
              f"{'includes or is below' if diff_lo <= 0 else 'is above'} 0")
    copies = common if rare == 0 else f"{rare} rows copy a training row fewer than {k} patients share; {common}"
    passed, reason = verdict_sentence(gate, [
        (ok[0], f"memorisation rate {mem:.3f} {'≤' if ok[0] else '>'} {t.memorisation_max:.2f}"),
        (ok[1], f"DCR share {share:.3f} {'≤' if ok[1] else '>'} {t.dcr_share_max:.2f}"),
        (ok[2], copies),
    ])
    return GateResult(gate, passed, reason, judged)


def linkability_gate(m: MetricResult, t: Thresholds) -> GateResult:
    """Upper end of the linkability risk's 95% CI < t.linkability_ci_high_max. A point estimate under
    the threshold with an upper bound over it is a refusal for lack of evidence, with the number of
    holdout rows (attacks) that would narrow the interval enough."""
    gate, limit = "linkability_gate", t.linkability_ci_high_max
    found = require_metrics(gate, [m], (m.name,))
    if isinstance(found, GateResult):
        return found
    if m.ci is None:
        return GateResult(gate, False, f"{gate} refused: metric {m.name} has no confidence interval.", (m,))
    value, (lo, hi) = metric_value(m), m.ci
    shown = f"linkability risk {value:.3f} (95% CI {lo:.3f}–{hi:.3f})"
    if hi < limit:
        return GateResult(gate, True, f"{gate} passed: {shown}, upper bound < {limit:.2f}.", (with_verdict(m, limit, True),))
    if value >= limit:
        return GateResult(gate, False, f"{gate} refused: {shown}, estimate ≥ {limit:.2f}.", (with_verdict(m, limit, False),))
    n = int(m.detail.get("n_attacks", 0))
    needed = rows_needed(n, value, hi, limit)
    judged = replace(with_verdict(m, limit, False), detail={**m.detail, "rows_needed": needed, "threshold_for_rows_needed": limit})
    reason = (f"{gate} refused, not enough evidence: {shown}; the estimate is below {limit:.2f} but the upper "
              f"bound is not; about {needed} holdout rows (attacks) would be needed, {n} were used.")
    return GateResult(gate, False, reason, (judged,))


def tstr_gate(metrics: Sequence[MetricResult], t: Thresholds) -> GateResult:
    """Best TSTR AUROC over the model families ≥ t.tstr_ratio_min × best TRTR AUROC (the tstr_ratio
    metric); the per-family AUROCs travel along for the record."""
    gate = "tstr_gate"
    context = tuple(m for m in metrics if m.name.startswith(("tstr_auroc[", "trtr_auroc[")))
    found = require_metrics(gate, metrics, ("tstr_ratio",))
    if isinstance(found, GateResult):
        return replace(found, metrics=found.metrics + context)
    ratio = found["tstr_ratio"]
    ok = metric_value(ratio) >= t.tstr_ratio_min
    d = ratio.detail
    reason = (f"{gate} {'passed' if ok else 'refused'}: best TSTR AUROC {d['best_tstr']:.3f} "
              f"({d['best_tstr_family']}) {'≥' if ok else '<'} {t.tstr_ratio_min:.2f} × best TRTR AUROC "
              f"{d['best_trtr']:.3f} ({d['best_trtr_family']}), ratio {ratio.value:.3f}.")
    return GateResult(gate, ok, reason, (with_verdict(ratio, t.tstr_ratio_min, ok), *context))
