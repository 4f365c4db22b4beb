"""The services `ordermesh up` runs, in start order (stopped in reverse).

Adding a service to the local stack is one spec function here and one entry in
`service_specs()`; the stack itself knows no service by name. Prometheus comes last
and scrapes every service whose spec names a `metrics` address (ordermesh.prometheus).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from ordermesh.probes import GrpcHealthCheck, HttpCheck
from ordermesh.prometheus import prometheus
from ordermesh.stackspec import LOCALHOST, Database, Endpoint, Port, ServiceSpec, StackOptions

ORDERS_GRPC_SERVICE = "ordermesh.orders.v1.OrdersService"
DEFAULT_DRAIN_SECONDS = 10.0


def service_specs(options: StackOptions) -> list[ServiceSpec]:
    """Every service of the local stack, in start order."""
    services = [orders(options), notify(options), gateway(options)]
    return [*services, prometheus(options, scraped=services)]


def orders(options: StackOptions) -> ServiceSpec:
    grpc_address = f"{LOCALHOST}:{options.orders_grpc_port}"
    http = f"http://{LOCALHOST}:{options.orders_http_port}"
    environ = options.environ
    return ServiceSpec(
        name="orders",
        command=(sys.executable, "-m", "orders", "serve"),
        env={
            "ORDERS_ENVIRONMENT": "development",
            "ORDERS_GRPC_PORT": str(options.orders_grpc_port),
            "ORDERS_HTTP_PORT": str(options.orders_http_port),
            # A development stack listens on loopback only, unless told otherwise.
            "ORDERS_GRPC_HOST": environ.get("ORDERS_GRPC_HOST", LOCALHOST),
            "ORDERS_HTTP_HOST": environ.get("ORDERS_HTTP_HOST", LOCALHOST),
            # The outbox relay runs inside orders and publishes to the stack's broker.
            "ORDERS_AMQP_URL": options.amqp_url,
        },
        database=Database(name="orders", url_env="ORDERS_DATABASE_URL"),
        needs_broker=True,
        ports=(
            Port(options.orders_grpc_port, "orders gRPC", "--orders-grpc-port"),
            Port(options.orders_http_port, "orders health/metrics", "--orders-http-port"),
        ),
        checks=(HttpCheck(f"{http}/readyz"), GrpcHealthCheck(grpc_address, ORDERS_GRPC_SERVICE)),
        endpoints=(
            Endpoint("gRPC", grpc_address),
            Endpoint("health", f"{http}/healthz  {http}/readyz"),
            Endpoint("metrics", f"{http}/metrics"),
        ),
        drain_seconds=_seconds(environ, "ORDERS_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS),
        metrics=f"{LOCALHOST}:{options.orders_http_port}",
    )


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    """A duration from the environment; a bad value is the service's to reject, not ours."""
    try:
        return float(environ.get(name, default))
    except ValueError:
        return default


def notify(options: StackOptions) -> ServiceSpec:
    http = f"http://{LOCALHOST}:{options.notify_http_port}"
    environ = options.environ
    return ServiceSpec(
        name="notify",
        command=(sys.executable, "-m", "notify", "serve"),
        env={
            "NOTIFY_ENVIRONMENT": "development",
            "NOTIFY_HTTP_PORT": str(options.notify_http_port),
            "NOTIFY_HTTP_HOST": environ.get("NOTIFY_HTTP_HOST", LOCALHOST),
            "NOTIFY_AMQP_URL": options.amqp_url,
        },
        database=Database(name="notify", url_env="NOTIFY_DATABASE_URL"),
        needs_broker=True,
        ports=(Port(options.notify_http_port, "notify HTTP API", "--notify-http-port"),),
        checks=(HttpCheck(f"{http}/readyz"),),
        endpoints=(
            Endpoint("HTTP API", f"{http}/v1/notifications?order_id=..."),
            Endpoint("health", f"{http}/healthz  {http}/readyz"),
            Endpoint("metrics", f"{http}/metrics"),
        ),
        drain_seconds=_seconds(environ, "NOTIFY_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS),
        metrics=f"{LOCALHOST}:{options.notify_http_port}",
    )


def gateway(options: StackOptions) -> ServiceSpec:
    http = f"http://{LOCALHOST}:{options.gateway_http_port}"
    environ = options.environ
    return ServiceSpec(
        name="gateway",
        command=(sys.executable, "-m", "gateway", "serve"),
        env={
            "GATEWAY_ENVIRONMENT": "development",
            "GATEWAY_HTTP_PORT": str(options.gateway_http_port),
            "GATEWAY_HTTP_HOST": environ.get("GATEWAY_HTTP_HOST", LOCALHOST),
            "GATEWAY_ORDERS_TARGET": f"{LOCALHOST}:{options.orders_grpc_port}",
            "GATEWAY_NOTIFY_URL": f"http://{LOCALHOST}:{options.notify_http_port}",
        },
        database=None,
        needs_broker=False,
        ports=(Port(options.gateway_http_port, "gateway public API", "--gateway-http-port"),),
        checks=(HttpCheck(f"{http}/readyz"),),
        endpoints=(
            Endpoint("public API", f"{http}/v1/orders  (docs: {http}/docs)"),
            Endpoint("token", "TOKEN=$(.venv/bin/ordermesh token --sub alice)"),
            Endpoint("health", f"{http}/healthz  {http}/readyz"),
            Endpoint("metrics", f"{http}/metrics"),
        ),
        drain_seconds=_seconds(environ, "GATEWAY_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS),
        metrics=f"{LOCALHOST}:{options.gateway_http_port}",
    )
