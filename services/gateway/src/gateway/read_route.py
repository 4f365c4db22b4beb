"""`GET /v1/orders/{order_id}` answered ahead of FastAPI, the gateway's hottest path.

FastAPI's routing, path parameter validation and response handling cost ~100 µs of
a read's ~290 µs of gateway CPU in the app (bench/gateway_layers.py, 2026-12-03),
more than the read itself. A read by id needs none of it: one path shape, one
parameter, one function (`gateway.api.read_order`, which the FastAPI route calls
too). So this ASGI app takes a GET whose path is exactly `/v1/orders/<canonical
UUID>` and hands everything else, unusual spellings of an id included, to FastAPI,
which stays the contract's one definition (OpenAPI, 422s, 405s, redirects).

What a client sees is the same either way, errors included
(services/gateway/tests/test_read_route.py compares the two answer for answer); the
route is put in the scope as FastAPI's router would, so metrics and span names still
say `/v1/orders/{order_id}`.
"""

from __future__ import annotations

import re
from typing import Final

from fastapi import FastAPI
from fastapi.routing import APIRoute

from gateway.api import Downstreams, caller_of, read_order
from gateway.error_handlers import problem_for, problem_response
from gateway.middleware.asgi import Receive, Scope, Send

TEMPLATE: Final = "/v1/orders/{order_id}"
_PATH: Final = re.compile(
    r"/v1/orders/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", re.IGNORECASE
)


class ReadRoute:
    """Pure ASGI: reads by id in canonical spelling here, every other request to `api`."""

    def __init__(self, api: FastAPI, downstreams: Downstreams, *, budget_seconds: float) -> None:
        self.api = api
        self.downstreams = downstreams
        self.budget_seconds = budget_seconds
        routes = [r for r in api.routes if isinstance(r, APIRoute) and r.path == TEMPLATE]
        if not routes:
            raise ValueError(f"the API has no route {TEMPLATE}")
        self.route = routes[0]  # what FastAPI's router would put in the scope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            match = _PATH.fullmatch(scope["path"])
        if match is None:
            await self.api(scope, receive, send)
            return
        scope["route"] = self.route
        try:
            customer, deadline = caller_of(scope, self.budget_seconds)
            # as str(uuid.UUID(...)) spells it, so both routes share coalesced calls
            response = await read_order(self.downstreams, customer, match[1].lower(), deadline)
        except Exception as exc:  # every error is answered as a problem
            response = problem_response(problem_for(exc))
        await response(scope, receive, send)
