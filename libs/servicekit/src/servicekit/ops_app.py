"""A tiny ASGI app for the operational endpoints: /healthz, /readyz, /metrics.

Services without an HTTP API of their own (orders) serve it on a side port; it is
plain ASGI, so it costs next to nothing per probe or scrape.
"""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry

from servicekit.asgi import ASGIApp, Receive, Scope, Send
from servicekit.health import Readiness
from servicekit.metrics import CONTENT_TYPE_LATEST, exposition

_JSON = b"application/json"


def build_ops_app(*, readiness: Readiness, registry: CollectorRegistry) -> ASGIApp:
    """The ASGI app answering liveness, readiness and metrics requests."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _refuse_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path not in ("/healthz", "/readyz", "/metrics"):
            await _respond(send, 404, _JSON, _json({"detail": f"no such endpoint: {path}"}))
        elif method not in ("GET", "HEAD"):
            await _respond(send, 405, _JSON, _json({"detail": "only GET is allowed"}))
        elif path == "/healthz":
            await _respond(send, 200, _JSON, _json({"status": "ok"}))
        elif path == "/readyz":
            report = await readiness.evaluate()
            body = {"status": "ready" if report.ready else "not ready", "checks": report.checks}
            await _respond(send, 200 if report.ready else 503, _JSON, _json(body))
        else:
            await _respond(send, 200, CONTENT_TYPE_LATEST.encode(), exposition(registry))

    return app


def _json(body: object) -> bytes:
    return json.dumps(body).encode()


async def _respond(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse_lifespan(receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.complete"})
