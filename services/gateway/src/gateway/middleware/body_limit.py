"""Reject request bodies larger than a fixed limit before the app sees them.

* A declared ``Content-Length`` above the limit gets 413 at once, without reading the
  body; a malformed or contradictory one gets 400.
* A body without ``Content-Length`` (chunked, or HTTP/2 without the header) is read
  into a buffer *before* the app is called, up to the limit. Over the limit it gets
  413 and the app never runs; otherwise the app receives the buffered body as one
  ``http.request`` message. Buffering costs at most ``max_bytes`` per request and
  is the only way to promise a clean 413: once the app has started streaming a
  response, a status can no longer be sent. An HTTP/1.x request with neither header
  has no body at all and passes straight through.
* A body with a valid ``Content-Length`` streams through untouched: the server
  (h11/httptools) already refuses a body that disagrees with its declared length.
"""

from __future__ import annotations

from gateway.middleware.asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    header_values,
    send_problem,
)


class BodyLimit:
    """Pure ASGI middleware answering 413 for request bodies over ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header_values(scope, b"content-length")
        if not declared:
            if _bodiless(scope):
                await self.app(scope, receive, send)
            else:
                await self._buffered(scope, receive, send)
            return
        if any(not value.isdigit() for value in declared) or len(set(declared)) > 1:
            await send_problem(
                send,
                status=400,
                slug="invalid-content-length",
                title="Invalid Content-Length",
                detail="Content-Length must be a single non-negative integer",
            )
            return
        if int(declared[0]) > self.max_bytes:
            await self._too_large(send)
            return
        await self.app(scope, receive, send)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # nobody is left to answer
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, send: Send) -> None:
        await send_problem(
            send,
            status=413,
            slug="payload-too-large",
            title="Payload too large",
            detail=f"the request body exceeds {self.max_bytes} bytes",
        )


def _bodiless(scope: Scope) -> bool:
    """An HTTP/1.x request with neither Content-Length nor Transfer-Encoding has no body
    (RFC 9112, 6.3): most GETs, which then skip the buffering's receive and replay."""
    if scope.get("http_version") not in ("1.0", "1.1"):
        return False  # HTTP/2 frames a body without either header
    return not header_values(scope, b"transfer-encoding")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive callable yielding the buffered body once, then the real channel."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
