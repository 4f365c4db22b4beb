"""ASGI type aliases and the problem-details response shared by the gateway middleware.

Problem bodies follow RFC 9457; the ``type`` URIs are part of the public API, so a
slug, once published, never changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Iterable[tuple[bytes, bytes]]

PROBLEM_TYPE_BASE = "https://ordermesh.dev/problems/"
PROBLEM_CONTENT_TYPE = b"application/problem+json"


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
    body = orjson.dumps(
        {"type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status, "detail": detail}
    )
    start_headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})
