"""The RED-metric middleware and interceptors, observed through real HTTP and gRPC calls."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry
from servicekit.asgi import Receive, Scope, Send
from servicekit.grpc_metrics import GrpcClientMetrics, GrpcServerMetrics
from servicekit.http_metrics import HttpServerMetrics, MeasureHttp


class Route:
    """What a router leaves in the scope: the matched template."""

    def __init__(self, path: str) -> None:
        self.path = path


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"]
    if path == "/boom":
        raise RuntimeError("a bug")
    if path.startswith("/v1/orders/"):
        scope["route"] = Route("/v1/orders/{order_id}")
        status = 200
    else:
        status = 401  # refused before routing, like the gateway's middleware does
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_http_requests_are_counted_by_route_template_and_status_class() -> None:
    registry = CollectorRegistry()
    measured = MeasureHttp(app, HttpServerMetrics(registry))
    transport = httpx.ASGITransport(app=measured, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for order in ("a", "b", "c"):
            assert (await client.get(f"/v1/orders/{order}")).status_code == 200
        assert (await client.post("/anything")).status_code == 401
        assert (await client.request("BREW", "/v1/orders/x")).status_code == 200
        assert (await client.get("/boom")).status_code == 500
    count = "ordermesh_http_server_request_duration_seconds_count"
    route = "/v1/orders/{order_id}"
    assert sample(registry, count, method="GET", route=route, status_class="2xx") == 3
    assert sample(registry, count, method="POST", route="unrouted", status_class="4xx") == 1
    assert sample(registry, count, method="other", route=route, status_class="2xx") == 1
    assert sample(registry, count, method="GET", route="unrouted", status_class="5xx") == 1
    assert sample(registry, "ordermesh_http_server_requests_in_flight") == 0
    # Raw paths never become label values.
    text = str(list(registry.collect()))
    assert "/v1/orders/a" not in text


@pytest.fixture
async def health_server() -> tuple[grpc.aio.Server, int, CollectorRegistry]:
    registry = CollectorRegistry()
    server = grpc.aio.server(interceptors=[GrpcServerMetrics(registry)])
    servicer: Any = health.aio.HealthServicer()  # type: ignore[attr-defined]
    await servicer.set("known", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port, registry


async def test_grpc_calls_are_counted_by_method_and_code_on_both_sides(
    health_server: tuple[grpc.aio.Server, int, CollectorRegistry],
) -> None:
    server, port, server_registry = health_server
    client_registry = CollectorRegistry()
    metrics = GrpcClientMetrics(client_registry)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for _ in range(2):
                known = health_pb2.HealthCheckRequest(service="known")
                await metrics.call("Check", stub.Check(known, timeout=5))
            unknown = health_pb2.HealthCheckRequest(service="unknown")
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await metrics.call("Check", stub.Check(unknown, timeout=5))
            assert failed.value.code() is grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop(None)
    server_count = "ordermesh_grpc_server_handling_seconds_count"
    client_count = "ordermesh_grpc_client_duration_seconds_count"
    assert sample(server_registry, server_count, method="Check", code="OK") == 2
    assert sample(server_registry, server_count, method="Check", code="NOT_FOUND") == 1
    assert sample(client_registry, client_count, method="Check", code="OK") == 2
    assert sample(client_registry, client_count, method="Check", code="NOT_FOUND") == 1
