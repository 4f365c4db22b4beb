"""CPU pinning as performance.md's facts were measured: the front tier alone on a core.

The implementation being measured has its front tier (the gateway, a baseline's front,
the ceiling) on the first CPU; everything else (wrk, back tiers, orders, notify,
Prometheus, PostgreSQL and this harness) shares the others. Every implementation gets
the same split, so no front tier competes with wrk or its own back end for its core,
and the numbers repeat. RabbitMQ is the machine's shared node, not started
here: it is left where it is. With one CPU, or `--no-pin`, nothing is pinned.
Pinning happens once everything is up, so start-up itself uses every CPU.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pinning:
    front: frozenset[int]
    rest: frozenset[int]

    @classmethod
    def for_machine(cls, enabled: bool) -> Pinning | None:
        cpus = sorted(os.sched_getaffinity(0))
        if not enabled or len(cpus) < 2:
            return None
        return cls(frozenset(cpus[:1]), frozenset(cpus[1:]))

    def apply(self, *, fronts: list[int], others: list[int]) -> None:
        """This process and `others` to the shared CPUs, `fronts` to their own. What
        starts later inherits from its parent (a PostgreSQL backend from the postmaster)."""
        for pid in [os.getpid(), *others]:
            set_affinity(pid, self.rest)
        for pid in fronts:
            set_affinity(pid, self.front)

    def describe(self) -> dict[str, list[int]]:
        return {"front_tier": sorted(self.front), "everything_else": sorted(self.rest)}


def set_affinity(pid: int, cpus: frozenset[int]) -> None:
    """Every thread of `pid` (taskset -a): sched_setaffinity on a pid moves one thread only."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return  # the process ended meanwhile
    for task in tasks:
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(task.name), cpus)


def affinity(pid: int) -> list[int]:
    return sorted(os.sched_getaffinity(pid))
