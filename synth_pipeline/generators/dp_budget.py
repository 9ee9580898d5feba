"""(ε, δ) for the differentially private generators (`mst`, `dp_diffusion`): checking the requested
budget, zCDP <-> (ε, δ) conversion, and the record a DP generator leaves for the manifest and report.

Neighbouring tables differ by adding or removing one row (one patient), the relation of both MST
(McKenna, Sheldon & Miklau 2021) and Opacus' Poisson-sampled DP-SGD. `cdp_delta` / `cdp_rho` are the
conversion of Canonne, Kamath & Steinke (2020, Prop. 12), the `cdp2adp` code that ships with MST:
ρ-zCDP implies (ε, δ)-DP for δ = exp((α-1)(αρ-ε) + α log(1-1/α)) / (α-1), minimised over α > 1.
"""

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from synth_pipeline.errors import BadInput

DEFAULT_EPSILON, DEFAULT_DELTA = 3.0, 1e-6


def check_budget(name: str, epsilon: Any, delta: Any) -> tuple[float, float]:
    """The requested (ε, δ) as floats; BadInput (exit 2) naming the generator when either is unusable."""
    for key, v in (("epsilon", epsilon), ("delta", delta)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise BadInput(f"generator '{name}': {key} must be a finite number (got {v!r})")
    if epsilon <= 0:
        raise BadInput(f"generator '{name}': epsilon must be > 0 (got {epsilon})")
    if not 0 < delta < 1:
        raise BadInput(f"generator '{name}': delta must be in (0, 1) (got {delta}); 1e-6 is the default")
    return float(epsilon), float(delta)


def cdp_delta(rho: float, eps: float) -> float:
    """The smallest δ such that ρ-zCDP implies (ε, δ)-DP (bisection on α, as MST's cdp2adp.cdp_delta)."""
    if rho <= 0:
        return 0.0
    amin, amax = 1.01, (eps + 1) / (2 * rho) + 2
    for _ in range(1000):
        alpha = (amin + amax) / 2
        if (2 * alpha - 1) * rho - eps + math.log1p(-1.0 / alpha) < 0:
            amin = alpha
        else:
            amax = alpha
    delta = math.exp((alpha - 1) * (alpha * rho - eps) + alpha * math.log1p(-1 / alpha)) / (alpha - 1.0)
    return min(delta, 1.0)


def _bisect(lo: float, hi: float, below: Callable[[float], bool]) -> tuple[float, float]:
    """[lo, hi] after 1000 halvings around the point where `below` turns from true to false."""
    for _ in range(1000):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if below(mid) else (lo, mid)
    return lo, hi


def cdp_rho(eps: float, delta: float) -> float:
    """The largest ρ whose zCDP guarantee implies (ε, δ)-DP (bisection, as MST's cdp2adp.cdp_rho)."""
    return _bisect(0.0, eps + 1, lambda rho: cdp_delta(rho, eps) <= delta)[0]


def cdp_eps(rho: float, delta: float) -> float:
    """The smallest ε with cdp_delta(ρ, ε) <= δ: the (ε, δ) guarantee ρ-zCDP gives (as cdp2adp.cdp_eps)."""
    if rho <= 0:
        return 0.0
    return _bisect(0.0, rho + 2 * math.sqrt(rho * math.log(1 / delta)), lambda eps: cdp_delta(rho, eps) > delta)[1]


@dataclass(frozen=True)
class PrivacySpent:
    """What a DP generator guarantees and how: recorded in generator state, the manifest and the report.
    `epsilon_spent` is the accountant's ε at `delta` (≤ the requested `epsilon`); `covers` says which
    steps read the private rows inside the budget, `outside` any that did not."""

    mechanism: str
    epsilon: float
    delta: float
    epsilon_spent: float
    covers: str
    outside: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
