"""Reads on the seeded data: each baseline answers what Ordermesh answers, byte for byte.

Both read the same database, so the same request must give the same bytes: the order
JSON, the pages and their cursors, the summary with notify's notifications, the export.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable

import httpx
import jwt
import orjson
import pytest
from gateway.schemas import OrderOut, OrderPage, OrderSummary

from bench.baselines.tests.conftest import (
    JWT,
    NOTIFICATIONS_PER_ORDER,
    Stack,
    auth,
    new_subject,
    token,
)
from bench.baselines.tests.support import assert_same_problem

BASELINES = ("sync", "default_async")
Clients = dict[str, httpx.Client]


def _same(
    clients: Clients,
    baseline: str,
    path: str,
    *,
    headers: dict[str, str],
    params: dict[str, str | int] | None = None,
) -> httpx.Response:
    """The baseline's answer, after checking it is Ordermesh's exactly."""
    reference = clients["ordermesh"].get(path, params=params, headers=headers)
    answer = clients[baseline].get(path, params=params, headers=headers)
    assert reference.status_code == 200, reference.text
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == reference.headers["content-type"]
    assert answer.content == reference.content
    return answer


@pytest.mark.parametrize("baseline", BASELINES)
def test_an_order_reads_the_same(stack: Stack, clients: Clients, baseline: str) -> None:
    customer = stack.seeded.customers[0]
    for order_id in stack.seeded.ids[customer][:3]:
        answer = _same(clients, baseline, f"/v1/orders/{order_id}", headers=auth(customer))
        order = OrderOut.model_validate_json(answer.content)
        assert (str(order.id), order.customer_id) == (order_id, customer)


@pytest.mark.parametrize("baseline", BASELINES)
def test_pages_read_the_same_to_the_end(stack: Stack, clients: Clients, baseline: str) -> None:
    customer = stack.seeded.customers[1]
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 4}
    while True:
        answer = _same(clients, baseline, "/v1/orders", params=params, headers=auth(customer))
        page = OrderPage.model_validate_json(answer.content)
        seen += [str(o.id) for o in page.items]
        if page.next_cursor is None:
            break
        params = {"limit": 4, "cursor": page.next_cursor}
    assert seen == stack.seeded.ids[customer][::-1]  # newest first, each once
    default = _same(clients, baseline, "/v1/orders", headers=auth(customer))
    assert len(orjson.loads(default.content)["items"]) == len(seen)  # 20 by default


@pytest.mark.parametrize("baseline", BASELINES)
def test_a_summary_reads_the_same(stack: Stack, clients: Clients, baseline: str) -> None:
    customer = stack.seeded.customers[0]
    order_id = stack.seeded.ids[customer][0]
    path = f"/v1/orders/{order_id}/summary"
    answer = _same(clients, baseline, path, headers=auth(customer))
    summary = OrderSummary.model_validate_json(answer.content)
    assert not summary.degraded
    assert len(summary.notifications) == NOTIFICATIONS_PER_ORDER  # from notify, seeded


@pytest.mark.parametrize("baseline", BASELINES)
def test_an_export_reads_the_same(stack: Stack, clients: Clients, baseline: str) -> None:
    customer = stack.seeded.customers[1]
    answer = _same(clients, baseline, "/v1/orders/export", headers=auth(customer))
    assert answer.headers["content-type"] == "application/x-ndjson"
    lines = [orjson.loads(line)["id"] for line in answer.content.splitlines()]
    assert lines == stack.seeded.ids[customer]  # oldest first
    empty = _same(clients, baseline, "/v1/orders/export", headers=auth(new_subject()))
    assert empty.content == b""


def _unsigned() -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"sub": "mallory", "iss": JWT.issuer, "aud": JWT.audience, "iat": now, "exp": now + 60}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


# name -> the Authorization header for that case (None: no header at all).
BAD_CREDENTIALS: dict[str, Callable[[], str | None]] = {
    "missing": lambda: None,
    "not bearer": lambda: "Basic YWxpY2U6c2VjcmV0",
    "empty bearer": lambda: "Bearer",
    "garbage": lambda: "Bearer not-a-jwt",
    "expired": lambda: "Bearer " + token("x", exp=int(time.time()) - 120),
    "not yet valid": lambda: "Bearer " + token("x", nbf=int(time.time()) + 600),
    "wrong audience": lambda: "Bearer " + token("x", aud="someone-else"),
    "wrong issuer": lambda: "Bearer " + token("x", iss="https://evil.example"),
    "alg none": lambda: "Bearer " + _unsigned(),
    "wrong key": lambda: (
        "Bearer "
        + jwt.encode(
            {"sub": "x", "iss": JWT.issuer, "aud": JWT.audience, "exp": int(time.time()) + 60},
            "another-secret-of-at-least-32-bytes!!",
            algorithm="HS256",
        )
    ),
    "no iat": lambda: (
        "Bearer "
        + jwt.encode(
            {"sub": "x", "iss": JWT.issuer, "aud": JWT.audience, "exp": int(time.time()) + 60},
            JWT.secret,
            algorithm="HS256",
        )
    ),
    "tampered": lambda: "Bearer " + token("x")[:-4] + "AAAA",
}
PATHS = ("/v1/orders/{id}", "/v1/orders/{id}/summary", "/v1/orders", "/v1/orders/export")


@pytest.mark.parametrize("baseline", BASELINES)
@pytest.mark.parametrize("case", sorted(BAD_CREDENTIALS))
def test_bad_credentials_are_refused_alike(
    stack: Stack, clients: Clients, baseline: str, case: str
) -> None:
    value = BAD_CREDENTIALS[case]()
    headers = {} if value is None else {"Authorization": value}
    order_id = stack.seeded.ids[stack.seeded.customers[0]][0]
    for path in PATHS:
        url = path.format(id=order_id)
        reference = clients["ordermesh"].get(url, headers=headers)
        assert reference.status_code == 401, (case, path)
        assert_same_problem(reference, clients[baseline].get(url, headers=headers))


@pytest.mark.parametrize("baseline", BASELINES)
def test_what_is_not_yours_or_not_there_is_refused_alike(
    stack: Stack, clients: Clients, baseline: str
) -> None:
    owner, other = stack.seeded.customers
    theirs = stack.seeded.ids[other][0]
    cases: list[tuple[str, dict[str, str | int], int]] = [
        (f"/v1/orders/{theirs}", {}, 404),  # another customer's order
        (f"/v1/orders/{theirs}/summary", {}, 404),
        (f"/v1/orders/{uuid.uuid4()}", {}, 404),
        (f"/v1/orders/{uuid.uuid4()}/summary", {}, 404),
        ("/v1/orders/not-a-uuid", {}, 422),
        ("/v1/orders", {"cursor": "not-a-cursor"}, 422),
        ("/v1/orders", {"limit": 0}, 422),
        ("/v1/orders", {"limit": 101}, 422),
    ]
    for path, params, status in cases:
        reference = clients["ordermesh"].get(path, params=params, headers=auth(owner))
        assert reference.status_code == status, (path, reference.text)
        answer = clients[baseline].get(path, params=params, headers=auth(owner))
        assert_same_problem(reference, answer)
    listed = clients[baseline].get("/v1/orders", headers=auth(owner)).json()
    assert theirs not in {o["id"] for o in listed["items"]}
