"""The release gates (DESIGN.md, Gate): each reads computed metrics, fills in their threshold
and verdict, and says in one sentence why it passed or refused. A metric that is absent or could not
be computed refuses its gate: no evidence is never read as good evidence."""

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from synth_pipeline.config import Thresholds
from synth_pipeline.metrics.base import MetricResult
from synth_pipeline.metrics.evidence import attacks_to_bound, attacks_to_detect_copy, copy_lower


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    reason: str
    metrics: tuple[MetricResult, ...]
    rule: str = ""  # the rule and its threshold in words, for the manifest (evidence: each metric's detail)

    def to_dict(self) -> dict:
        d = {"gate": self.gate, "passed": self.passed, "reason": self.reason,
             "metrics": [m.to_dict() for m in self.metrics]}
        return {**d, "rule": self.rule} if self.rule else d

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


def _more_rows(needed: int | None, d: dict, what: str, knob: str = "link_attacks") -> str:
    """The advice for a refusal for lack of evidence: the attacks (= holdout rows) that would do, and
    which setting gives them; or that the table is too small (never more rows than it has)."""
    n, hold, most = int(d.get("n_attacks", 0)), int(d.get("holdout_rows", 0)), int(d.get("max_attacks", 0))
    rows = int(d.get("table_rows", 0))
    if needed is None:
        if most >= rows // 2:
            return (f"the table is too small: even {most} attacks (half of its {rows} rows as holdout) would not "
                    f"{what}; {n} were used")
        return f"more rows would not help: even {most} attacks (the most the gate makes) would not {what}; {n} were used"
    how = (f"raise {knob} to {needed}" if needed <= hold else
           f"a holdout of {needed} rows, holdout_fraction ≥ {needed / rows:.2f}" if rows else "a larger holdout")
    return f"about {needed} holdout rows (attacks) would {what} ({how}); {n} were used"


def linkability_gate(m: MetricResult, t: Thresholds) -> GateResult:
    """Upper end of the linkability risk's 95% CI < t.linkability_ci_high_max. A point estimate under
    the threshold with an upper bound over it is a refusal for lack of evidence, with the number of
    holdout rows (attacks) that would bring the bound under the threshold if the estimate holds
    (`evidence.attacks_to_bound`, at most half the table), or the statement that the table is too small."""
    gate, limit = "linkability_gate", t.linkability_ci_high_max
    found = require_metrics(gate, [m], (m.name,))
    if isinstance(found, GateResult):
        return found
    if m.ci is None:
        return GateResult(gate, False, f"{gate} refused: metric {m.name} has no confidence interval.", (m,))
    value, (lo, hi) = metric_value(m), m.ci
    k = m.detail.get("n_neighbors")
    rule = (f"anonymeter linkability risk, upper end of its 95% CI < {limit:g}; the attacker looks at the most "
            "neighbours (up to link_neighbors) with which a generator leaking nothing could pass")
    shown = f"linkability risk {value:.3f} (95% CI {lo:.3f}–{hi:.3f}" + (f", {k}-neighbour attacker)" if k else ")")
    if hi < limit:
        return GateResult(gate, True, f"{gate} passed: {shown}, upper bound < {limit:.2f}.", (with_verdict(m, limit, True),),
                          rule)
    if value >= limit:
        return GateResult(gate, False, f"{gate} refused: {shown}, estimate ≥ {limit:.2f}.", (with_verdict(m, limit, False),),
                          rule)
    d = m.detail
    n = int(d.get("n_attacks", 0))
    needed = attacks_to_bound(n, int(d.get("n_success", 0)), int(d.get("n_control_success", 0)), limit,
                              int(d.get("max_attacks", 0))) if n else None
    judged = replace(with_verdict(m, limit, False), detail={**d, "rows_needed": needed, "threshold_for_rows_needed": limit})
    reason = (f"{gate} refused, not enough evidence: {shown}; the estimate is below {limit:.2f} but the upper "
              f"bound is not; " + _more_rows(needed, d, f"bring it below {limit:.2f} if the estimate holds") + ".")
    return GateResult(gate, False, reason, (judged,), rule)


def inference_gate(metrics: Sequence[MetricResult], t: Thresholds) -> GateResult:
    """anonymeter attribute inference of the target and each sensitive column (`inference[<col>]`):
    refuses when any column's baseline-corrected risk has the lower end of its 95% CI above
    t.inference_ci_low_max (training patients' secret is guessed better than unseen patients', by
    more than sampling noise explains), or when its attack is too weak to catch even a copy (a copy's
    lower bound would not clear the threshold with the attacks made: `evidence.copy_lower`), then
    with the holdout rows that would make it strong enough, or that the table is too small.

    The lower end, not the upper: the risk divides by the control's failure rate, so for a column
    the control already guesses right 97% of the time (FLCHAIN `mgus`) the Gaussian copula's
    interval spans 0-0.84 and no release could show an upper bound under any useful threshold,
    while every copy's lower end is at least 0.58. benchmarks/PRIVACY_GATES.md has the measurements."""
    gate, limit = "inference_gate", t.inference_ci_low_max
    per_column = [m for m in metrics if m.name.startswith("inference[")]
    if not per_column:
        return GateResult(gate, False, f"{gate} refused: no inference[<column>] metric was provided.", tuple(metrics))
    found = require_metrics(gate, per_column, [m.name for m in per_column])
    if isinstance(found, GateResult):
        return found
    checks: list[tuple[bool, str]] = []
    judged: list[MetricResult] = []
    for m in per_column:
        col = m.name[len("inference["):-1]
        if m.ci is None:
            return GateResult(gate, False, f"{gate} refused: metric {m.name} has no confidence interval.", tuple(per_column))
        value, (lo, hi), d = metric_value(m), m.ci, m.detail
        n, n_control = int(d.get("n_attacks", 0)), int(d.get("n_control_success", 0))
        strength = copy_lower(n, n_control) if n else 0.0
        shown = f"{col} risk {value:.3f} (95% CI {lo:.3f}–{hi:.3f})"
        extra: dict = {"copy_lower_bound": strength}
        if lo > limit:
            ok, text = False, f"{shown}, lower bound > {limit:.2f}"
        elif strength <= limit < 1.0:  # a threshold of 1 switches the gate off: nothing can exceed it
            most = int(d.get("max_attacks", 0))
            needed = attacks_to_detect_copy(n, n_control, limit, most) if n else None
            extra["rows_needed"] = needed
            ok, text = False, (f"not enough evidence on {col}: with {n} attacks, the control guessing right "
                               f"{d.get('control_rate', 0):.0%}, even a copy would read a lower bound of only "
                               f"{strength:.2f}; " + _more_rows(needed, d, f"catch a copy (lower bound > {limit:.2f})",
                                                                "the inference attacks"))
        else:
            ok, text = True, f"{shown}, lower bound ≤ {limit:.2f}"
        checks.append((ok, text))
        judged.append(replace(with_verdict(m, limit, ok), detail={**d, **extra}))
    passed, reason = verdict_sentence(gate, checks)
    rule = (f"anonymeter attribute-inference risk of each attacked column, lower end of its 95% CI ≤ {limit:g}, "
            f"with attacks enough that a copy's lower end would exceed {limit:g}")
    return GateResult(gate, passed, reason, tuple(judged), rule)


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


FIDELITY_FLOOR = "real holdout vs train"


def fidelity_gate(metrics: Sequence[MetricResult], t: Thresholds) -> GateResult:
    """Refuses a collapsed candidate: its column shapes and column pair trends (SDMetrics, synthetic vs
    train) may sit at most t.fidelity_shape_margin_max / t.fidelity_trend_margin_max below the
    real-sample floor, the same scores of the real holdout against train (`<name>_floor`), measured on
    this table. The margins sit between what publishes and what collapsed in benchmarks/GENERATORS.md
    (Coarse tables and the fidelity gate)."""
    gate = "fidelity_gate"
    names = ("column_shapes", "column_pair_trends", "column_shapes_floor", "column_pair_trends_floor")
    found = require_metrics(gate, metrics, names)
    if isinstance(found, GateResult):
        return found
    checks, judged = [], []
    for name, margin, label in (("column_shapes", t.fidelity_shape_margin_max, "column shapes"),
                                ("column_pair_trends", t.fidelity_trend_margin_max, "pair trends")):
        value, floor = metric_value(found[name]), metric_value(found[f"{name}_floor"])
        bound = floor - margin
        ok = value >= bound
        checks.append((ok, f"{label} {value:.3f} {'≥' if ok else '<'} {bound:.3f} (floor {floor:.3f} − {margin:.2f})"))
        judged += [with_verdict(found[name], bound, ok), found[f"{name}_floor"]]
    passed, reason = verdict_sentence(gate, checks)
    rule = (f"column shapes ≥ the {FIDELITY_FLOOR} column shapes − {t.fidelity_shape_margin_max:g} and pair trends "
            f"≥ the {FIDELITY_FLOOR} pair trends − {t.fidelity_trend_margin_max:g}")
    return GateResult(gate, passed, reason, tuple(judged), rule)
