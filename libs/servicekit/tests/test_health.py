"""Readiness states and the operational ASGI app."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from prometheus_client import Counter
from servicekit.health import Readiness
from servicekit.metrics import new_registry
from servicekit.ops_app import build_ops_app


async def _ok() -> None:
    return None


async def _down() -> None:
    raise ConnectionRefusedError("connection refused")


async def _hangs() -> None:
    await asyncio.sleep(10)


async def test_not_ready_until_started() -> None:
    readiness = Readiness()
    readiness.add_check("db", _ok)
    report = await readiness.evaluate()
    assert not report.ready
    assert report.checks == {"db": "ok", "startup": "starting"}
    readiness.mark_started()
    assert (await readiness.evaluate()).ready


async def test_a_failing_or_slow_check_makes_it_not_ready() -> None:
    readiness = Readiness(check_timeout=0.05)
    readiness.add_check("db", _down)
    readiness.add_check("broker", _hangs)
    readiness.mark_started()
    report = await readiness.evaluate()
    assert not report.ready
    assert report.checks["db"] == "ConnectionRefusedError: connection refused"
    assert report.checks["broker"] == "timed out after 0.05s"


async def test_draining_turns_readiness_off_for_good() -> None:
    readiness = Readiness()
    readiness.mark_started()
    readiness.start_draining()
    report = await readiness.evaluate()
    assert not report.ready
    assert report.checks["shutdown"] == "draining"


async def _call(app: Any, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "method": method, "path": path}, receive, send)
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, sent[1]["body"]


async def test_ops_app_answers_liveness_readiness_and_metrics() -> None:
    readiness = Readiness()
    readiness.add_check("db", _down)
    registry = new_registry()
    Counter("demo_events_total", "Events", registry=registry).inc(3)
    app = build_ops_app(readiness=readiness, registry=registry)

    status, _, body = await _call(app, "GET", "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})

    status, _, body = await _call(app, "GET", "/readyz")
    assert status == 503
    assert json.loads(body)["checks"]["db"].startswith("ConnectionRefusedError")

    status, headers, body = await _call(app, "GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    assert b"demo_events_total 3.0" in body
    assert b"process_resident_memory_bytes" in body


async def test_ops_app_rejects_unknown_paths_and_methods() -> None:
    app = build_ops_app(readiness=Readiness(), registry=new_registry())
    assert (await _call(app, "GET", "/admin"))[0] == 404
    status, _, body = await _call(app, "POST", "/healthz")
    assert status == 405
    assert json.loads(body)["detail"] == "only GET is allowed"
