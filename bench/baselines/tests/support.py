"""Comparing a baseline's answer with Ordermesh's for the same request."""

from __future__ import annotations

from typing import Any

import httpx

ORDER: dict[str, Any] = {
    "currency": "EUR",
    "items": [{"sku": "tea", "quantity": 2, "unit_price_minor": 450}],
}


def shape(value: Any) -> Any:
    """The value with every leaf replaced by its JSON type: what two answers share."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted({repr(shape(item)) for item in value})
    if value is None:
        return "null"
    return type(value).__name__


def assert_same_problem(reference: httpx.Response, answer: httpx.Response) -> dict[str, Any]:
    """Same status, media type, problem type and field errors; the body is the baseline's."""
    assert answer.status_code == reference.status_code, (reference.text, answer.text)
    assert answer.headers["content-type"] == reference.headers["content-type"]
    assert answer.headers["content-type"] == "application/problem+json"
    expected, body = reference.json(), answer.json()
    assert set(body) == set(expected), (expected, body)
    assert body["type"] == expected["type"]
    assert body["status"] == expected["status"]
    assert body["detail"]
    fields = [e["field"] for e in expected.get("errors") or []]
    assert [e["field"] for e in body.get("errors") or []] == fields
    if reference.status_code == 401:
        assert answer.headers["www-authenticate"] == reference.headers["www-authenticate"]
    result: dict[str, Any] = body
    return result
