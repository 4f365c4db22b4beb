"""The ceiling answers every scenario with the payloads the others send, in shape and size."""

from __future__ import annotations

import uuid

import httpx
import orjson
from gateway.schemas import OrderOut, OrderPage, OrderSummary

from bench.baselines.tests.conftest import CEILING_EXPORT_ROWS, Stack, auth
from bench.baselines.tests.support import ORDER, shape

Clients = dict[str, httpx.Client]


def test_the_ceiling_serves_the_seeded_payloads(stack: Stack, clients: Clients) -> None:
    customer = stack.seeded.customers[0]
    order_id = stack.seeded.ids[customer][0]
    reference = clients["ordermesh"].get(f"/v1/orders/{order_id}", headers=auth(customer))
    ceiling = clients["ceiling"]

    answer = ceiling.get(f"/v1/orders/{order_id}")
    assert answer.status_code == 200
    assert OrderOut.model_validate_json(answer.content).id == uuid.UUID(order_id)
    assert len(answer.content) == len(reference.content)  # the same bytes on the wire
    assert shape(answer.json()) == shape(reference.json())

    page = OrderPage.model_validate_json(ceiling.get("/v1/orders", params={"limit": 7}).content)
    assert (len(page.items), page.next_cursor is not None) == (7, True)
    summary = ceiling.get(f"/v1/orders/{order_id}/summary")
    assert OrderSummary.model_validate_json(summary.content).order.id == uuid.UUID(order_id)

    created = ceiling.post("/v1/orders", json=ORDER)
    assert created.status_code == 201
    assert OrderOut.model_validate_json(created.content).id != uuid.UUID(order_id)

    exported = ceiling.get("/v1/orders/export")
    assert exported.headers["content-type"] == "application/x-ndjson"
    lines = exported.content.splitlines()
    assert len(lines) == CEILING_EXPORT_ROWS
    assert len({orjson.loads(line)["id"] for line in lines}) == CEILING_EXPORT_ROWS
    assert ceiling.get("/healthz").status_code == 200
