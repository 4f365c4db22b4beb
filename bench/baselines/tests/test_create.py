"""Creates: the same answers as Ordermesh, and the same rows written (key, order, outbox)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from gateway.schemas import OrderOut

from bench.baselines.tests.conftest import Stack, auth, new_subject
from bench.baselines.tests.support import ORDER, assert_same_problem, shape

BASELINES = ("sync", "default_async")
Clients = dict[str, httpx.Client]


def _create(
    client: httpx.Client, subject: str, key: str, body: dict[str, Any] = ORDER
) -> httpx.Response:
    return client.post("/v1/orders", json=body, headers=auth(subject) | {"Idempotency-Key": key})


async def _written(database_url: str, customer: str, key: str) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url)
    try:
        keys = await conn.fetch(
            "SELECT order_id FROM idempotency_keys WHERE customer_id = $1 AND idempotency_key = $2",
            customer,
            key,
        )
        orders = await conn.fetch("SELECT id FROM orders WHERE customer_id = $1", customer)
        events = await conn.fetch(
            """SELECT o.event_type, o.payload->'order'->>'id' AS order_id FROM outbox o
               JOIN orders ON orders.id = o.aggregate_id WHERE orders.customer_id = $1""",
            customer,
        )
    finally:
        await conn.close()
    return {
        "keys": [str(r["order_id"]) for r in keys],
        "orders": [str(r["id"]) for r in orders],
        "events": [(r["event_type"], r["order_id"]) for r in events],
    }


@pytest.mark.parametrize("baseline", BASELINES)
def test_a_create_and_its_replay_answer_alike(
    stack: Stack, clients: Clients, baseline: str
) -> None:
    key = uuid.uuid4().hex
    subjects = {"ordermesh": new_subject(), baseline: new_subject()}
    answers = {
        name: (_create(clients[name], subject, key), _create(clients[name], subject, key))
        for name, subject in subjects.items()
    }
    (reference, reference_replay), (first, replay) = answers["ordermesh"], answers[baseline]
    assert [r.status_code for r in (reference, reference_replay, first, replay)] == [201] * 4
    assert shape(first.json()) == shape(reference.json())
    assert "idempotent-replayed" not in first.headers
    assert replay.headers["idempotent-replayed"] == reference_replay.headers["idempotent-replayed"]
    assert replay.content == first.content
    order = OrderOut.model_validate_json(first.content)
    assert (order.customer_id, order.status) == (subjects[baseline], "pending")
    assert order.total_minor == 900
    assert [i.model_dump() for i in order.items] == ORDER["items"]

    # The same rows as Ordermesh writes: one key, one order, its order.created event.
    written = asyncio.run(_written(stack.orders_db, subjects[baseline], key))
    assert written == {
        "keys": [str(order.id)],
        "orders": [str(order.id)],
        "events": [("order.created", str(order.id))],
    }
    # Ordermesh reads the baseline's order as the baseline answered it, and replays its
    # key (the request fingerprint is the same).
    read = clients["ordermesh"].get(f"/v1/orders/{order.id}", headers=auth(subjects[baseline]))
    assert read.content == first.content
    crossed = _create(clients["ordermesh"], subjects[baseline], key)
    assert crossed.status_code == 201
    assert crossed.headers["idempotent-replayed"] == "true"
    assert crossed.json()["id"] == str(order.id)


def _requests(key: str) -> dict[str, dict[str, Any]]:
    """name -> keyword arguments of a POST /v1/orders that must be refused."""
    json_body = {"content-type": "application/json"}
    invalid = {"currency": "XXQ", "items": [{"sku": "", "quantity": 0, "unit_price_minor": -1}]}
    return {
        "key reused for another body": {"json": ORDER | {"currency": "USD"}, "key": key},
        "no key": {"json": ORDER, "key": None},
        "key too long": {"json": ORDER, "key": "x" * 256},
        "malformed body": {"content": b"{not json", "headers": json_body, "key": "k"},
        "invalid body": {"json": invalid, "key": "k"},
        "too many items": {"json": ORDER | {"items": ORDER["items"] * 101}, "key": "k"},
        "unknown field": {"json": ORDER | {"discount": 5}, "key": "k"},
        "no token": {"json": ORDER, "key": "k", "subject": None},
    }


@pytest.mark.parametrize("baseline", BASELINES)
def test_bad_creates_are_refused_alike(stack: Stack, clients: Clients, baseline: str) -> None:
    key = uuid.uuid4().hex
    subjects = {"ordermesh": new_subject(), baseline: new_subject()}
    for name, subject in subjects.items():
        assert _create(clients[name], subject, key).status_code == 201  # the key's first use
    for case, spec in _requests(key).items():
        answers = {}
        for name, subject in subjects.items():
            who = spec.get("subject", subject)
            headers = (auth(who) if who else {}) | spec.get("headers", {})
            if spec["key"] is not None:
                headers["Idempotency-Key"] = spec["key"]
            answers[name] = clients[name].post(
                "/v1/orders", json=spec.get("json"), content=spec.get("content"), headers=headers
            )
        reference = answers["ordermesh"]
        assert reference.status_code in (400, 401, 422), (case, reference.text)
        assert_same_problem(reference, answers[baseline])
    # Nothing of it created anything: each customer still has its one order.
    for name, subject in subjects.items():
        listed = clients[name].get("/v1/orders", headers=auth(subject)).json()
        assert len(listed["items"]) == 1, (name, listed)
