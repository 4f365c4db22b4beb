"""The HPA controller's replica rule for one External metric with an AverageValue target.

KEDA hands a ScaledObject's trigger to an HPA as an External metric; for AverageValue
the controller (pkg/controller/podautoscaler, GetExternalPerPodMetricReplicas) takes
the metric's total, compares total / (target x current) with 1, and outside the
tolerance (0.1 by default, cluster-wide) asks for ceil(total / target): the same as
ceil(current x value / target) with value = total / current, the per-pod average.
The result is then clamped to [min, max]. Not modelled: the scale-up rate limits and
the scale-down stabilisation window of `behavior`, which only delay what this asks for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

TOLERANCE = 0.1


def desired_replicas(
    *,
    current: int,
    total: float,
    target: float,
    minimum: int,
    maximum: int,
    tolerance: float = TOLERANCE,
) -> int:
    """What one evaluation asks for, given `current` replicas and the metric's `total`."""
    if current < 1 or target <= 0 or not 1 <= minimum <= maximum:
        raise ValueError(f"no rule for current={current}, target={target}, [{minimum}, {maximum}]")
    ratio = total / (target * current)
    # As the controller computes it, from the total: current x average could land a
    # float round-off above an integer and ask for one replica more.
    proposal = math.ceil(total / target) if abs(1.0 - ratio) > tolerance else current
    return max(minimum, min(maximum, proposal))


@dataclass(frozen=True)
class Step:
    """One evaluation: the replicas it started from, the signal, what it asked for."""

    at: float
    current: int
    total: float
    desired: int

    def __str__(self) -> str:
        return f"t={self.at:5.1f}s total={self.total:8.1f} {self.current}->{self.desired}"


@dataclass
class HpaLoop:
    """The controller's loop without a cluster: it starts at min, as a new HPA does, and
    each evaluation's answer is the next one's current replicas (scaling is instant)."""

    target: float
    minimum: int
    maximum: int
    current: int = field(init=False)
    steps: list[Step] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.current = self.minimum

    def evaluate(self, total: float, *, at: float) -> int:
        desired = desired_replicas(
            current=self.current,
            total=total,
            target=self.target,
            minimum=self.minimum,
            maximum=self.maximum,
        )
        self.steps.append(Step(at=at, current=self.current, total=total, desired=desired))
        self.current = desired
        return desired

    def history(self) -> str:
        """Every step, one a line, for an assertion message."""
        return "\n".join(map(str, self.steps))

    def settled(self, *, at_min: bool, hold: int, since: float = -math.inf) -> bool:
        """The last `hold` evaluations after `since` all asked for min (or all for more)."""
        last = [s for s in self.steps if s.at > since][-hold:]
        return len(last) == hold and all((s.desired == self.minimum) == at_min for s in last)

    def rose(self, *, since: float) -> bool:
        """Some evaluation after `since` asked for more than the minimum."""
        return any(s.desired > self.minimum for s in self.steps if s.at > since)
