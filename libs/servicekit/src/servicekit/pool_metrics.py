"""Metrics of an asyncpg pool: its size, the connections in use, and the wait to get one.

`PoolMetrics.watch` registers the gauges (read from the pool at scrape time) and
remembers the pool, so `servicekit.postgres.Database.connection`, through which every
repository query acquires its connection, records the acquire wait without the
callers knowing. `forget` drops it again when the pool is closed (asyncpg pools take
no weak references).
"""

from __future__ import annotations

from typing import Final

import asyncpg
from prometheus_client import CollectorRegistry, Gauge, Histogram

# From a free connection (µs) to the acquire timeout (seconds).
BUCKETS: Final = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

# id(pool) -> (the pool, its acquire-wait histogram); the pool is kept to check identity.
_watched: dict[int, tuple[asyncpg.Pool, Histogram]] = {}


class PoolMetrics:
    """The pool instruments of one service process (pools are told apart by `pool`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.size = Gauge(
            "ordermesh_db_pool_connections",
            "Connections the pool holds open",
            ["pool"],
            registry=registry,
        )
        self.in_use = Gauge(
            "ordermesh_db_pool_connections_in_use",
            "Connections lent out to a query right now",
            ["pool"],
            registry=registry,
        )
        self.max = Gauge(
            "ordermesh_db_pool_max_connections",
            "The most connections the pool may open",
            ["pool"],
            registry=registry,
        )
        self.acquire = Histogram(
            "ordermesh_db_pool_acquire_seconds",
            "Time waited for a pooled connection",
            ["pool"],
            buckets=BUCKETS,
            registry=registry,
        )

    def watch(self, pool: asyncpg.Pool, *, name: str) -> None:
        self.size.labels(name).set_function(pool.get_size)
        self.in_use.labels(name).set_function(lambda: pool.get_size() - pool.get_idle_size())
        self.max.labels(name).set_function(pool.get_max_size)
        _watched[id(pool)] = (pool, self.acquire.labels(name))

    def forget(self, pool: asyncpg.Pool) -> None:
        _watched.pop(id(pool), None)


def acquire_histogram(pool: asyncpg.Pool) -> Histogram | None:
    """The acquire-wait instrument of a watched pool (None for a pool nobody watches)."""
    entry = _watched.get(id(pool))
    return entry[1] if entry is not None and entry[0] is pool else None
