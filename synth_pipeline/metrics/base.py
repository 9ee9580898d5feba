"""The one result type every metric returns, so gates, manifests and reports read them alike."""

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetricResult:
    """`value` is None when the metric could not be computed; `error` then says why.
    `compared` names what was compared with what (e.g. "synthetic->train vs holdout->train")."""

    name: str
    value: float | None
    ci: tuple[float, float] | None = None
    threshold: float | None = None
    passed: bool | None = None
    compared: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def computed(self) -> bool:
        return self.value is not None and self.error is None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci"] = list(self.ci) if self.ci is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MetricResult":
        return cls(**{**d, "ci": tuple(d["ci"]) if d.get("ci") is not None else None})


def missing(name: str, reason: str, compared: str = "") -> MetricResult:
    """A metric that could not be computed: never silently dropped, and a gate reading it refuses."""
    return MetricResult(name=name, value=None, passed=False if reason else None, compared=compared, error=reason)
