"""Idempotency-Key on POST /v1/orders: replays, conflicts, and never a second order."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.e2e.support import ORDER, assert_problem
from tests.e2e.target import Target


async def test_a_replay_returns_the_same_status_and_body(
    client: httpx.AsyncClient, target: Target
) -> None:
    headers = target.auth() | {"Idempotency-Key": uuid.uuid4().hex}
    first = await client.post("/v1/orders", json=ORDER, headers=headers)
    replay = await client.post("/v1/orders", json=ORDER, headers=headers)
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    listed = await client.get("/v1/orders", headers=headers)
    assert [o["id"] for o in listed.json()["items"]] == [first.json()["id"]]


async def test_the_same_key_with_another_body_is_422(
    client: httpx.AsyncClient, target: Target
) -> None:
    headers = target.auth() | {"Idempotency-Key": uuid.uuid4().hex}
    assert (await client.post("/v1/orders", json=ORDER, headers=headers)).status_code == 201
    other = ORDER | {"currency": "USD"}
    response = await client.post("/v1/orders", json=other, headers=headers)
    assert_problem(response, 422, "idempotency-key-reused")


async def test_concurrent_duplicates_create_one_order(
    client: httpx.AsyncClient, target: Target
) -> None:
    headers = target.auth() | {"Idempotency-Key": uuid.uuid4().hex}
    responses = await asyncio.gather(
        *(client.post("/v1/orders", json=ORDER, headers=headers) for _ in range(20))
    )
    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
    ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(ids) == 1
    listed = await client.get("/v1/orders", headers=headers)
    assert [o["id"] for o in listed.json()["items"]] == list(ids)


async def test_a_missing_or_malformed_key_is_400(client: httpx.AsyncClient, target: Target) -> None:
    auth = {name.encode(): value.encode() for name, value in target.auth().items()}
    keys: list[bytes | None] = [None, b"", b"has\ttab", b"x" * 256, "caf\u00e9".encode("latin-1")]
    for key in keys:
        headers = auth if key is None else auth | {b"Idempotency-Key": key}
        response = await client.post("/v1/orders", json=ORDER, headers=headers)
        assert_problem(response, 400, "idempotency-key-invalid")
    listed = await client.get("/v1/orders", headers=auth)
    assert listed.json()["items"] == []
