"""Prometheus exposition shared by every service's /metrics endpoint.

Each service declares its own instruments in its own `metrics.py` on a registry it
is handed, so a test can build a service with a fresh registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

__all__ = ["CONTENT_TYPE_LATEST", "exposition", "new_registry"]


def new_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC collectors a service should export."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(registry)
