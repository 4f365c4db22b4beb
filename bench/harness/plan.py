"""What one harness run measures: scenarios, implementations, concurrency, rounds, data."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

IMPLEMENTATIONS: Final = ("ordermesh", "sync", "default_async", "ceiling")
# wrk scenarios run in this order; creates last, so every read sees the seeded data only.
WRK_SCENARIOS: Final = ("read", "list", "summary", "create")
SCENARIOS: Final = ("read", "list", "summary", "export", "create", "size")


@dataclass(frozen=True)
class Data:
    """The seeded rows: `readers` customers own `small_orders` orders (the ids and cursors
    wrk drives), one customer owns `export_rows`, the rest of `total_orders` belong to
    bulk customers so the table has its full size."""

    readers: int = 200
    small_orders: int = 10_000
    export_rows: int = 100_000
    total_orders: int = 1_000_000
    bulk_customers: int = 10
    notifications: int = 3  # per read order, so summaries return a real list
    creators: int = 200  # subjects that create, a token each
    page_limit: int = 20

    @property
    def bulk_orders(self) -> int:
        return max(0, self.total_orders - self.small_orders - self.export_rows)


@dataclass(frozen=True)
class Plan:
    out: Path
    scenarios: tuple[str, ...] = SCENARIOS
    implementations: tuple[str, ...] = IMPLEMENTATIONS
    connections: tuple[int, ...] = (64, 256, 1024)
    rounds: int = 3
    duration: float = 8.0  # seconds per wrk run
    warmup: float = 2.0  # seconds of untimed load per scenario and implementation
    size_connections: int = 64  # the 10k vs 1M read probe
    event_seconds: float = 10.0  # the paced create probe (0: skip it)
    drain_seconds: float = 180.0  # longest wait for this run's processes to go quiet
    outside_wait_seconds: float = 3.0  # longest wait for outside load to pass (shared box)
    # A wrk run during which outside load took more than `outside_limit` cores is kept
    # apart and measured again, at most `remeasure` times (then the last one stands).
    outside_limit: float = 0.25
    remeasure: int = 2
    # wrk's per-request timeout, under the run's length (else slow answers go uncounted):
    # the gateway's own request budget, and about where a client gives up.
    timeout: str = "5s"
    pin: bool = True
    data: Data = Data()

    def __post_init__(self) -> None:
        unknown = set(self.scenarios) - set(SCENARIOS)
        unknown |= set(self.implementations) - set(IMPLEMENTATIONS)
        if unknown:
            raise ValueError(f"unknown scenarios or implementations: {sorted(unknown)}")
        if self.rounds < 1 or self.duration < 1 or not self.connections:
            raise ValueError("need at least one round of at least 1 s and a connection level")


def smoke(out: Path) -> Plan:
    """Tiny settings for CI: proves the harness end to end, measures nothing worth keeping."""
    return Plan(
        out=out,
        scenarios=("read", "create", "export", "size"),
        connections=(32,),
        rounds=1,
        duration=1.0,
        warmup=0.0,
        event_seconds=1.5,
        drain_seconds=5.0,
        outside_wait_seconds=0.0,
        remeasure=0,  # CI's box is busy with other tests: nothing to learn from a rerun
        data=Data(
            readers=20,
            small_orders=400,
            export_rows=2_000,
            total_orders=2_400,
            bulk_customers=1,
            notifications=1,
            creators=10,
            page_limit=5,
        ),
    )


def with_options(plan: Plan, **changes: object) -> Plan:
    """`plan` with the options given on the command line (None: unchanged)."""
    given = {k: v for k, v in changes.items() if v is not None}
    return replace(plan, **given)  # type: ignore[arg-type]
