"""The HTTP API (FastAPI) and the one ASGI app on the HTTP port.

No lifespan: the runtime owns the pool and the sender and hands the app a ready
service. `/healthz`, `/readyz` and `/metrics` are servicekit's ops app, dispatched
before FastAPI, so a probe or scrape costs as little as on orders' side port.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Final

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from servicekit.asgi import ASGIApp, Receive, Scope, Send
from servicekit.instrumentation import FASTAPI_TELEMETRY

from notify.errors import DatabaseUnavailable
from notify.pagination import InvalidCursor, decode_cursor, encode_cursor
from notify.schemas import NotificationOut, NotificationPage
from notify.service import NotificationsService

OPS_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})
DEFAULT_LIMIT: Final = 20
MAX_LIMIT: Final = 100


def build_api(*, service: NotificationsService) -> FastAPI:
    """The FastAPI app serving notification history from `service`."""
    app = FastAPI(title="Ordermesh notify", version="1", telemetry=FASTAPI_TELEMETRY)

    @app.get("/v1/notifications")
    async def list_notifications(
        order_id: Annotated[uuid.UUID, Query(description="the order whose history to list")],
        limit: Annotated[
            int, Query(ge=1, le=MAX_LIMIT, description="notifications per page")
        ] = DEFAULT_LIMIT,
        cursor: Annotated[
            str | None, Query(max_length=64, description="next_cursor of the previous page")
        ] = None,
    ) -> NotificationPage:
        """An order's notifications, oldest first, one page at a time."""
        try:
            after_id = decode_cursor(cursor) if cursor is not None else None
        except InvalidCursor as exc:
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("query", "cursor"), "msg": str(exc)}]
            ) from None
        page = await service.list_notifications(order_id=order_id, after_id=after_id, limit=limit)
        return NotificationPage(
            items=[NotificationOut.model_validate(n) for n in page.items],
            next_cursor=encode_cursor(page.last_id) if page.last_id is not None else None,
        )

    @app.exception_handler(DatabaseUnavailable)
    async def database_unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    return app


class HttpApp:
    """Ops endpoints first, then the API once the runtime has built it (503 until then)."""

    def __init__(self, ops: ASGIApp) -> None:
        self._ops = ops
        self.api: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPS_PATHS:
            await self._ops(scope, receive, send)
        elif self.api is not None:
            await self.api(scope, receive, send)
        else:
            body = orjson.dumps({"detail": "notify is starting; retry shortly"})
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
            ]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
