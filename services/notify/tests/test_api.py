"""The HTTP API: keyset pagination, 422s for bad parameters, ops endpoints on the same port."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from notify import db as notify_db
from notify.api import HttpApp, build_api
from notify.metrics import NotifyMetrics
from notify.pagination import encode_cursor
from notify.repository import NotificationsRepository
from notify.senders import LogSender
from notify.service import NotificationsService
from prometheus_client import CollectorRegistry
from servicekit.health import Readiness
from servicekit.ops_app import build_ops_app

from .conftest import RuntimeFactory, make_settings
from .support import metric_value, order_event


def _service(pool: asyncpg.Pool) -> NotificationsService:
    return NotificationsService(
        repository=NotificationsRepository(pool, acquire_timeout=2),
        sender=LogSender(),
        metrics=NotifyMetrics(CollectorRegistry()),
    )


@pytest.fixture
async def service(db_url: str) -> AsyncIterator[NotificationsService]:
    pool = await notify_db.create_pool(make_settings(db_url, "amqp://unused"))
    try:
        yield _service(pool)
    finally:
        await pool.close()


@pytest.fixture
async def client(service: NotificationsService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_api(service=service))
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as http:
        yield http


async def _history(service: NotificationsService, count: int) -> uuid.UUID:
    order_id = uuid.uuid4()
    statuses = ["pending", "confirmed", "cancelled"]
    for i in range(count):
        await service.handle_event(event=order_event(statuses[i % 3], order_id=order_id))
    await service.handle_event(event=order_event())  # another order's
    return order_id


async def test_pages_cover_the_history_once_oldest_first(
    service: NotificationsService, client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    order_id = await _history(service, 45)
    seen: list[int] = []
    sizes: list[int] = []
    cursor: str | None = None
    while True:
        params = {"order_id": str(order_id), "limit": "20"} | ({"cursor": cursor} if cursor else {})
        reply = await client.get("/v1/notifications", params=params)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        sizes.append(len(page["items"]))
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = await db.fetch(
        "SELECT id FROM notifications WHERE order_id = $1 ORDER BY id", order_id
    )
    assert sizes == [20, 20, 5]
    assert seen == [r["id"] for r in expected]


async def test_an_item_carries_the_record(
    service: NotificationsService, client: httpx.AsyncClient
) -> None:
    event = order_event("confirmed")
    await service.handle_event(event=event)
    await service.handle_event(event=event)
    reply = await client.get("/v1/notifications", params={"order_id": str(event.order.id)})
    assert reply.status_code == 200
    body = reply.json()
    assert body["next_cursor"] is None
    (item,) = body["items"]
    assert item["event_id"] == str(event.event_id)
    assert item["event_type"] == "order.confirmed"
    assert (item["status"], item["channel"], item["duplicates"]) == ("sent", "log", 1)
    assert item["payload"] == event.model_dump(mode="json")
    assert item["delivered_at"] is not None


async def test_a_full_last_page_has_no_next_cursor(
    service: NotificationsService, client: httpx.AsyncClient
) -> None:
    order_id = await _history(service, 4)
    reply = await client.get("/v1/notifications", params={"order_id": str(order_id), "limit": 4})
    assert (len(reply.json()["items"]), reply.json()["next_cursor"]) == (4, None)


async def test_an_unknown_order_has_an_empty_history(client: httpx.AsyncClient) -> None:
    reply = await client.get("/v1/notifications", params={"order_id": str(uuid.uuid4())})
    assert reply.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "order_id"),
        ({"order_id": "not-a-uuid"}, "order_id"),
        ({"order_id": str(uuid.UUID(int=1)), "limit": "0"}, "limit"),
        ({"order_id": str(uuid.UUID(int=1)), "limit": "101"}, "limit"),
        ({"order_id": str(uuid.UUID(int=1)), "limit": "ten"}, "limit"),
        ({"order_id": str(uuid.UUID(int=1)), "cursor": "garbage!"}, "cursor"),
        ({"order_id": str(uuid.UUID(int=1)), "cursor": "bjE6LTU"}, "cursor"),  # "n1:-5"
        ({"order_id": str(uuid.UUID(int=1)), "cursor": "x" * 65}, "cursor"),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    reply = await client.get("/v1/notifications", params=params)
    assert reply.status_code == 422, reply.text
    (problem,) = reply.json()["detail"]
    assert problem["loc"] == ["query", field]
    assert problem["msg"]


async def test_a_cursor_this_service_issued_is_accepted(client: httpx.AsyncClient) -> None:
    reply = await client.get(
        "/v1/notifications", params={"order_id": str(uuid.uuid4()), "cursor": encode_cursor(7)}
    )
    assert reply.status_code == 200


async def test_a_database_outage_is_503_with_retry_after(db_url: str) -> None:
    pool = await notify_db.create_pool(make_settings(db_url, "amqp://unused"))
    await pool.close()  # every query now fails as "database unavailable"
    transport = httpx.ASGITransport(app=build_api(service=_service(pool)))
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as http:
        reply = await http.get("/v1/notifications", params={"order_id": str(uuid.uuid4())})
    assert (reply.status_code, reply.headers["retry-after"]) == (503, "1")
    assert "the notify database is unavailable" in reply.json()["detail"]


async def test_before_start_the_api_answers_503_and_ops_answer() -> None:
    readiness = Readiness()
    app = HttpApp(build_ops_app(readiness=readiness, registry=CollectorRegistry()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as http:
        api = await http.get("/v1/notifications", params={"order_id": str(uuid.uuid4())})
        assert (api.status_code, api.headers["retry-after"]) == (503, "1")
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 503


async def test_the_runtime_serves_api_and_ops_on_one_port(start_runtime: RuntimeFactory) -> None:
    runtime = await start_runtime()
    base = f"http://127.0.0.1:{runtime.http_port}"
    async with httpx.AsyncClient(base_url=base) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
        assert (await http.get("/healthz")).status_code == 200
        metrics = (await http.get("/metrics")).text
        assert metric_value(metrics, "ordermesh_notify_redelivered_total") == 0
        assert "ordermesh_notify_messages_handled_total" in metrics
        history = await http.get("/v1/notifications", params={"order_id": str(uuid.uuid4())})
        assert history.status_code == 200
        assert (await http.get("/v1/notifications")).status_code == 422
        # RED metrics of the API, and the pool the history query went through.
        metrics = (await http.get("/metrics")).text
        route = 'route="/v1/notifications"'
        assert f'method="GET",{route},status_class="2xx"' in metrics
        assert f'method="GET",{route},status_class="4xx"' in metrics
        pool = runtime.registry.get_sample_value
        assert (pool("ordermesh_db_pool_acquire_seconds_count", {"pool": "api"}) or 0) >= 1
        assert (pool("ordermesh_db_pool_connections", {"pool": "api"}) or 0) >= 1
        assert pool("ordermesh_db_pool_max_connections", {"pool": "api"}) == (
            runtime.settings.db_pool_max_size
        )
    await runtime.stop()
    async with httpx.AsyncClient(base_url=base) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/healthz")
