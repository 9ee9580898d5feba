"""How much an anonymeter attack can show, in anonymeter's own statistics (stats.confidence: Wilson
rates, the propagated error of the baseline-corrected risk): the interval a generator that leaks
nothing would get, and how many attacks (= holdout rows, the binding limit) an interval needs to
clear a threshold, never more than the table can give. The linkability and inference gates use it
to refuse for lack of evidence with advice that holds (tests re-run the gate with the rows advised)."""

import math

CONFIDENCE = 0.95


def _rate(n: int, k: int):
    from anonymeter.stats.confidence import success_rate

    return success_rate(n_total=n, n_success=int(min(max(k, 0), n)), confidence_level=CONFIDENCE)


def _upper_rate(n: int, k: int) -> float:
    r = _rate(n, k)
    return min(1.0, r.value + r.error)


def _risk(n: int, n_success: int, n_control: int):
    from anonymeter.stats.confidence import residual_success

    return residual_success(attack_rate=_rate(n, n_success), control_rate=_rate(n, n_control))


def risk_interval(n: int, n_success: int, n_control: int) -> tuple[float, float, float]:
    """anonymeter's risk and 95% CI (clipped to [0, 1]) for these counts out of n attacks each."""
    r = _risk(n, n_success, n_control).to_risk()
    return float(r.value), float(r.ci[0]), float(r.ci[1])


def zero_risk_upper(n: int, n_control: int) -> float:
    """Upper end of the risk's 95% CI when the attack on train succeeds exactly as often as the
    control attack: the best a generator that leaks nothing can get from n attacks."""
    return risk_interval(n, n_control, n_control)[2]


def copy_lower(n: int, n_control: int) -> float:
    """Lower end of the risk's 95% CI for a copy of train (every attack on train succeeds): how
    clearly n attacks can tell a copy from the control attack's own success."""
    return risk_interval(n, n, n_control)[1]


def _bisect(ok, lo: int, hi: int) -> int | None:
    """Smallest m in [lo, hi] with ok(m) (ok monotone up to rounding), None when ok(hi) fails."""
    if hi < lo or not ok(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def attacks_to_bound(n: int, n_success: int, n_control: int, threshold: float, max_attacks: int) -> int | None:
    """Fewest attacks (more than n, at most max_attacks) with which the risk's upper bound falls below
    `threshold`, planning for the point estimate to stay where it is and for the error at the worst
    corner of the two success rates' current 95% CIs (a rate that drifts up widens the interval;
    that drift is what made the old n * (half-width ratio)^2 advice fail on small tables). None when
    max_attacks are not enough, or when more attacks cannot help (estimate at or above threshold)."""
    from anonymeter.stats.confidence import residual_success

    value = risk_interval(n, n_success, n_control)[0]
    if value >= threshold:
        return None
    rates = [(a, c) for a in (n_success / n, _upper_rate(n, n_success)) for c in (n_control / n, _upper_rate(n, n_control))]

    def ok(m: int) -> bool:
        err = max(residual_success(attack_rate=_rate(m, round(a * m)), control_rate=_rate(m, round(c * m))).error
                  for a, c in rates if c < 1)
        return value + err < threshold

    return _bisect(ok, n + 1, max_attacks)


def attacks_to_detect_copy(n: int, n_control: int, threshold: float, max_attacks: int) -> int | None:
    """Fewest attacks (more than n, at most max_attacks) with which a copy's lower bound clears
    `threshold`, the control rate planned at the upper end of its 95% CI. None when not reachable."""
    c = _upper_rate(n, n_control)
    if c >= 1:
        return None
    return _bisect(lambda m: copy_lower(m, math.ceil(c * m)) > threshold, n + 1, max_attacks)
