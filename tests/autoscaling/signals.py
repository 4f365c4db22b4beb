"""An autoscaling signal as the chart renders it, and its value as Prometheus answers it.

A KEDA ScaledObject's prometheus trigger names the PromQL and the per-replica target
(`threshold`, AverageValue); its min and max bound the replicas. KEDA needs the query
to return one sample. An empty answer fails here: a query that matches nothing would
pass every "stays at min" check (KEDA reads it as 0 by default, as an error with the
chart's `ignoreNullValues: "false"`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from ordermesh.chart import Manifest, find

from tests.autoscaling.hpa import HpaLoop

_WINDOW = re.compile(r"\[(\d+)([smh])\]")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Signal:
    """One ScaledObject's trigger: what to ask Prometheus, and what to compare it with."""

    name: str
    query: str
    target: float
    minimum: int
    maximum: int

    def loop(self) -> HpaLoop:
        return HpaLoop(target=self.target, minimum=self.minimum, maximum=self.maximum)

    def window_seconds(self) -> float:
        """The range of the query's rate() (it bounds how long the signal lags the load)."""
        windows = _WINDOW.findall(self.query)
        assert len(windows) == 1, f"{self.name}: expected one range [..] in {self.query}"
        number, unit = windows[0]
        return float(int(number) * _UNIT_SECONDS[unit])


def signal_of(objects: Iterable[Manifest], name: str) -> Signal:
    """The signal of ScaledObject `name`; fails saying what is missing from the object."""
    found = find(objects, "ScaledObject", name)
    assert len(found) == 1, f"the chart renders {len(found)} ScaledObject {name}, not one"
    spec: dict[str, Any] = found[0]["spec"]
    triggers = spec.get("triggers") or []
    assert len(triggers) == 1, f"{name}: expected one trigger, got {triggers}"
    trigger = triggers[0]
    assert trigger.get("type") == "prometheus", f"{name}: not a prometheus trigger: {trigger}"
    # The rule in tests/autoscaling/hpa.py is the one for AverageValue (KEDA's default).
    assert trigger.get("metricType", "AverageValue") == "AverageValue", f"{name}: {trigger}"
    metadata = trigger.get("metadata") or {}
    for key in ("query", "threshold"):
        assert isinstance(metadata.get(key), str), f"{name}: no string {key} in {metadata}"
    for key in ("minReplicaCount", "maxReplicaCount"):
        assert isinstance(spec.get(key), int), f"{name}: no {key} in {spec}"
    return Signal(
        name=name,
        query=metadata["query"],
        target=float(metadata["threshold"]),
        minimum=spec["minReplicaCount"],
        maximum=spec["maxReplicaCount"],
    )


class QueryError(Exception):
    """Prometheus refused the query, or its answer is not the one sample KEDA needs."""


async def value(prometheus: httpx.AsyncClient, query: str, *, at: float) -> float:
    """The query's single sample at time `at` (seconds since the epoch)."""
    response = await prometheus.get("/api/v1/query", params={"query": query, "time": at})
    body = response.json()
    if response.status_code != 200 or body.get("status") != "success":
        raise QueryError(f"{query}: {body.get('errorType')}: {body.get('error')}")
    result = body["data"]["result"]
    if body["data"]["resultType"] == "scalar":
        return float(result[1])
    if len(result) != 1:
        raise QueryError(f"{query}: {len(result)} samples, not one: {result}")
    return float(result[0]["value"][1])


class Watch:
    """Evaluates signals through Prometheus, on a clock that starts with the test."""

    def __init__(self, prometheus: httpx.AsyncClient) -> None:
        self.prometheus = prometheus
        self.started = time.time()

    def now(self) -> float:
        return time.time() - self.started

    async def evaluate(self, signal: Signal, loop: HpaLoop) -> int:
        at = time.time()
        return loop.evaluate(
            await value(self.prometheus, signal.query, at=at), at=at - self.started
        )

    async def wait_for_data(self, *queries: str, seconds: float) -> None:
        """Until every query has its one sample (the first scrapes take a moment)."""
        deadline = time.monotonic() + seconds
        while True:
            problems = []
            for query in queries:
                try:
                    await value(self.prometheus, query, at=time.time())
                except QueryError as exc:
                    problems.append(str(exc))
            if not problems:
                return
            assert time.monotonic() < deadline, f"no data after {seconds:g}s: {problems}"
            await asyncio.sleep(1.0)
