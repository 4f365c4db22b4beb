"""The life of an order through the public API, and what a caller may see of others'."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

from tests.e2e.support import ORDER, assert_problem, create_order, poll_until
from tests.e2e.target import Target


async def test_create_get_list_summary_cancel_export(
    client: httpx.AsyncClient, target: Target
) -> None:
    auth = target.auth()
    order = await create_order(client, auth)
    assert (order["status"], order["total_minor"], order["currency"]) == ("pending", 900, "EUR")

    fetched = await client.get(f"/v1/orders/{order['id']}", headers=auth)
    assert fetched.status_code == 200
    assert fetched.json() == order

    listed = await client.get("/v1/orders", params={"limit": 10}, headers=auth)
    assert listed.status_code == 200
    assert listed.json() == {"items": [order], "next_cursor": None}

    async def notified(event_type: str) -> dict[str, Any] | None:
        response = await client.get(f"/v1/orders/{order['id']}/summary", headers=auth)
        assert response.status_code == 200, response.text
        summary: dict[str, Any] = response.json()
        types = [n["event_type"] for n in summary["notifications"]]
        return summary if event_type in types else None

    summary = await poll_until(lambda: notified("order.created"), what="the created notification")
    assert summary["degraded"] is False
    assert summary["order"]["id"] == order["id"]

    cancelled = await client.post(f"/v1/orders/{order['id']}/cancel", headers=auth)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = await client.post(f"/v1/orders/{order['id']}/cancel", headers=auth)
    assert again.status_code == 200
    assert again.json() == cancelled.json()
    await poll_until(lambda: notified("order.cancelled"), what="the cancelled notification")

    exported = await client.get("/v1/orders/export", headers=auth)
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/x-ndjson"
    lines = [orjson.loads(line) for line in exported.content.splitlines()]
    assert lines == [cancelled.json()]


async def test_pages_and_export_cover_every_order_once(
    client: httpx.AsyncClient, target: Target
) -> None:
    auth = target.auth()
    created = [await create_order(client, auth) for _ in range(7)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/orders", params=params, headers=auth)).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    newest_first = [o["id"] for o in reversed(created)]
    assert seen == newest_first
    exported = await client.get("/v1/orders/export", headers=auth)
    assert exported.content.endswith(b"\n")
    lines = exported.content.splitlines()
    assert [orjson.loads(line)["id"] for line in lines] == [o["id"] for o in created]
    # orders renders the export's lines itself: byte for byte what a read of each answers
    for line, order in zip(lines, created, strict=True):
        assert line == (await client.get(f"/v1/orders/{order['id']}", headers=auth)).content


async def test_another_customers_order_is_not_found(
    client: httpx.AsyncClient, target: Target
) -> None:
    alice, mallory = target.auth(), target.auth()
    order = await create_order(client, alice)
    for method, path in [
        ("GET", f"/v1/orders/{order['id']}"),
        ("GET", f"/v1/orders/{order['id']}/summary"),
        ("POST", f"/v1/orders/{order['id']}/cancel"),
    ]:
        response = await client.request(method, path, headers=mallory)
        assert_problem(response, 404, "not-found")
    listed = await client.get("/v1/orders", headers=mallory)
    assert listed.json()["items"] == []
    exported = await client.get("/v1/orders/export", headers=mallory)
    assert exported.status_code == 200
    assert exported.content == b""
    still = await client.get(f"/v1/orders/{order['id']}", headers=alice)
    assert still.json()["status"] == "pending"  # mallory's cancel did nothing


async def test_an_unknown_order_is_404_and_a_malformed_id_422(
    client: httpx.AsyncClient, target: Target
) -> None:
    auth = target.auth()
    assert_problem(await client.get(f"/v1/orders/{uuid.uuid4()}", headers=auth), 404, "not-found")
    body = assert_problem(
        await client.get("/v1/orders/not-a-uuid", headers=auth), 422, "validation-failed"
    )
    assert body["errors"][0]["field"] == "path.order_id"
    assert_problem(await client.get("/v1/nothing-here", headers=auth), 404, "not-found")


async def test_bad_bodies_are_refused_with_the_right_status(
    client: httpx.AsyncClient, target: Target
) -> None:
    headers = target.auth() | {"Idempotency-Key": uuid.uuid4().hex}
    malformed = await client.post(
        "/v1/orders", content=b"{not json", headers=headers | {"content-type": "application/json"}
    )
    assert_problem(malformed, 400, "malformed-body")
    invalid = await client.post(
        "/v1/orders",
        json={"currency": "XXQ", "items": [{"sku": "", "quantity": 0, "unit_price_minor": -1}]},
        headers=headers,
    )
    body = assert_problem(invalid, 422, "validation-failed")
    assert {e["field"] for e in body["errors"]} == {
        "body.currency",
        "body.items[0].sku",
        "body.items[0].quantity",
        "body.items[0].unit_price_minor",
    }
    too_many = await client.post(
        "/v1/orders", json=ORDER | {"items": ORDER["items"] * 101}, headers=headers
    )
    assert_problem(too_many, 422, "validation-failed")
    listed = await client.get("/v1/orders", headers=headers)
    assert listed.json()["items"] == []  # nothing was created by any of it
