"""ASGI type aliases and the problem-details response shared by the gateway middleware."""

from __future__ import annotations

from collections.abc import Iterable

from servicekit.asgi import ASGIApp, Message, Receive, Scope, Send

from gateway.problems import PROBLEM_CONTENT_TYPE, problem_body

__all__ = [
    "ASGIApp",
    "Headers",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "header_values",
    "send_problem",
]

Headers = Iterable[tuple[bytes, bytes]]


def header_values(scope: Scope, name: bytes) -> list[bytes]:
    """Every value of the request header ``name`` (lower-case, as ASGI delivers names)."""
    return [value for key, value in scope["headers"] if key == name]


async def send_problem(
    send: Send,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: Headers = (),
) -> None:
    """Answer with an ``application/problem+json`` body and any extra headers."""
    body = problem_body(status, slug, title, detail)
    start_headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})
