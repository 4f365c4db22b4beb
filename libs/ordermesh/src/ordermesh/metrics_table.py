"""The metrics reference: every instrument of every service as one Markdown table.

Built from the instrument classes themselves (each declared on a fresh registry), so
the README's table (between the metrics-table markers, printed by
`ordermesh metrics-table`) cannot drift from the code: a test compares the two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from gateway.metrics import GatewayMetrics
from notify.metrics import NotifyMetrics
from orders.metrics import OrdersMetrics
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase
from servicekit.grpc_metrics import GrpcClientMetrics, GrpcServerMetrics
from servicekit.http_metrics import HttpServerMetrics
from servicekit.pool_metrics import PoolMetrics

# Each instrument class, with the services that export it.
INSTRUMENTS: Final[tuple[tuple[Callable[[CollectorRegistry], Any], tuple[str, ...]], ...]] = (
    (HttpServerMetrics, ("gateway", "notify")),
    (GrpcServerMetrics, ("orders",)),
    (GrpcClientMetrics, ("gateway",)),
    (PoolMetrics, ("orders", "notify")),
    (GatewayMetrics, ("gateway",)),
    (OrdersMetrics, ("orders",)),
    (NotifyMetrics, ("notify",)),
)
_HEADER = ("metric", "type", "labels", "exported by", "meaning")


def render_metrics_table() -> str:
    rows = [_HEADER, tuple("---" for _ in _HEADER)]
    for factory, services in INSTRUMENTS:
        instruments = vars(factory(CollectorRegistry())).values()
        rows.extend(_row(m, services) for m in instruments if isinstance(m, MetricWrapperBase))
    return "\n".join("| " + " | ".join(row) + " |" for row in rows) + "\n"


def _row(metric: MetricWrapperBase, services: tuple[str, ...]) -> tuple[str, ...]:
    # prometheus_client keeps these attributes private; they have been stable for years.
    kind: str = metric._type or ""
    name: str = metric._name
    labels: tuple[str, ...] = metric._labelnames
    documentation: str = metric._documentation or ""
    exposed = f"{name}_total" if kind == "counter" else name
    return (
        f"`{exposed}`",
        kind,
        ", ".join(f"`{label}`" for label in labels) or "-",
        ", ".join(services),
        " ".join(documentation.split()).replace("|", "\\|"),
    )
