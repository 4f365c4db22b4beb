"""RSS and CPU seconds of each implementation's processes, sampled around every run.

`own` processes are the implementation's (gateway, orders, notify; a baseline's tiers;
the ceiling): their CPU per 1,000 requests is its cost. `shared` ones (PostgreSQL with
its backends, RabbitMQ, Prometheus) serve whichever implementation is loaded, so their
CPU is reported beside it, not added to it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType

import psutil

MB = 1024 * 1024


def cpu_seconds(process: psutil.Process, *, tree: bool = False) -> float:
    """User + system seconds; with `tree`, its children's too (live and reaped)."""
    try:
        times = process.cpu_times()
        total = times.user + times.system
        if tree:
            total += times.children_user + times.children_system
            for child in process.children(recursive=True):
                try:
                    child_times = child.cpu_times()
                except psutil.Error:
                    continue  # ended between listing and reading
                total += child_times.user + child_times.system
    except psutil.Error:
        return 0.0
    return total


def rss_mb(process: psutil.Process) -> float:
    try:
        return float(process.memory_info().rss) / MB
    except psutil.Error:
        return 0.0


@dataclass
class Watched:
    own: dict[str, psutil.Process]
    shared: dict[str, psutil.Process] = field(default_factory=dict)  # roots of trees

    def cpu(self) -> tuple[dict[str, float], dict[str, float]]:
        own = {role: cpu_seconds(p) for role, p in self.own.items()}
        shared = {role: cpu_seconds(p, tree=True) for role, p in self.shared.items()}
        return own, shared

    def total_cpu(self) -> float:
        own, shared = self.cpu()
        return sum(own.values()) + sum(shared.values())


@dataclass
class Usage:
    seconds: float = 0.0
    cpu_own: dict[str, float] = field(default_factory=dict)
    cpu_shared: dict[str, float] = field(default_factory=dict)
    rss_before_mb: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    machine_busy_cores: float = 0.0  # all of the machine's CPUs
    # Busy CPU that none of the processes started here (nor RabbitMQ) used: outside load,
    # which would skew the run (the machine may be shared).
    outside_cores: float = 0.0

    def cpu_per_1k(self, requests: int) -> float:
        """CPU seconds of the implementation's own processes per 1,000 requests."""
        return 1000 * sum(self.cpu_own.values()) / requests if requests else 0.0


class Measure:
    """`with Measure(watched) as usage:` fills `usage` when the block ends; RSS is
    sampled every `interval` seconds in a thread meanwhile (its peak is kept)."""

    def __init__(self, watched: Watched, interval: float = 0.25) -> None:
        self.watched = watched
        self.interval = interval
        self.usage = Usage()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Usage:
        self._own, self._shared = self.watched.cpu()
        self._machine, self._ours = _busy_seconds(), self._our_seconds()
        self.usage.rss_before_mb = self._rss()
        self.usage.peak_rss_mb = dict(self.usage.rss_before_mb)
        self._started = time.perf_counter()
        self._thread.start()
        return self.usage

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._peak(self._rss())
        own, shared = self.watched.cpu()
        self.usage.seconds = time.perf_counter() - self._started
        self.usage.cpu_own = _delta(own, self._own)
        self.usage.cpu_shared = _delta(shared, self._shared)
        busy = _busy_seconds() - self._machine
        self.usage.machine_busy_cores = busy / self.usage.seconds
        ours = self._our_seconds() - self._ours
        self.usage.outside_cores = max(0.0, busy - ours) / self.usage.seconds

    def _our_seconds(self) -> float:
        return our_seconds(self.watched.shared)

    def _rss(self) -> dict[str, float]:
        return {role: rss_mb(p) for role, p in self.watched.own.items()}

    def _peak(self, now: Mapping[str, float]) -> None:
        peak = self.usage.peak_rss_mb
        for role, value in now.items():
            peak[role] = max(peak.get(role, 0.0), value)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak(self._rss())


def wait_quiet(watched: Watched, *, seconds: float, cores: float = 0.15) -> float:
    """Wait until the processes use under `cores` of CPU in two 0.3 s windows in a row
    (what wrk left in flight is done, a relay backlog published); the seconds waited."""
    started = time.perf_counter()
    calm = 0
    before = watched.total_cpu()
    while time.perf_counter() - started < seconds and calm < 2:
        time.sleep(0.3)
        now = watched.total_cpu()
        calm = calm + 1 if (now - before) / 0.3 < cores else 0
        before = now
    return time.perf_counter() - started


def our_seconds(shared: Mapping[str, psutil.Process]) -> float:
    """This process and all it started (stacks, baselines, wrk), plus the shared ones
    outside that tree (PostgreSQL daemonizes away from its parent; RabbitMQ)."""
    me = psutil.Process()
    mine = {p.pid for p in me.children(recursive=True)}
    total = cpu_seconds(me, tree=True)
    return total + sum(cpu_seconds(p, tree=True) for p in shared.values() if p.pid not in mine)


def wait_outside_quiet(
    shared: Mapping[str, psutil.Process], *, seconds: float, cores: float = 0.25
) -> float:
    """Wait (at most `seconds`) until work not started here uses under `cores` in two
    0.5 s windows in a row: the machine may be shared. The outside cores last seen."""
    started = time.perf_counter()
    calm, outside = 0, 0.0
    while calm < 2 and time.perf_counter() - started < seconds:
        busy, ours, at = _busy_seconds(), our_seconds(shared), time.perf_counter()
        time.sleep(0.5)
        elapsed = time.perf_counter() - at
        busy, ours = _busy_seconds() - busy, our_seconds(shared) - ours
        outside = max(0.0, busy - ours) / elapsed
        calm = calm + 1 if outside < cores else 0
    return outside


def _busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _delta(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    return {role: max(0.0, after[role] - before.get(role, 0.0)) for role in after}
