"""The ceiling: a raw ASGI app answering the public API's payloads from memory.

    python -m bench.baselines.ceiling --port 8094

No framework, no token check, no database and no second tier: what one uvicorn process
on this machine can answer at most, for scale. Every payload is a seeded order as the
others serve it (bench.seed's rows, bench.baselines.records' JSON), so the bytes on the
wire have the same shape and length; the requested id is spliced in.

    GET  /v1/orders/{id}          the order
    GET  /v1/orders/{id}/summary  the order, no notifications
    GET  /v1/orders?limit=N       a page of N orders with a next cursor
    POST /v1/orders               201 and an order with a new id (the body is read)
    GET  /v1/orders/export        --export-rows orders as NDJSON, 500 a chunk
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qs

import orjson
from gateway.schemas import MAX_PAGE_SIZE

from bench.baselines import serving
from bench.baselines.contract import DEFAULT_LIMIT, JSON, NDJSON, summary_json
from bench.baselines.records import encode_cursor, ndjson, order_json
from bench.seed import order_rows

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PREFIX: Final = "/v1/orders/"
SUMMARY: Final = "/summary"
EXPORT_CHUNK: Final = 500
_NOT_FOUND: Final = orjson.dumps({"status": 404, "title": "Not found"})


class Payloads:
    """The answers, built once from the seeded orders of `customer`."""

    def __init__(self, *, customer: str, seed: int, export_rows: int) -> None:
        self._customer, self._seed, self._export_rows = customer, seed, export_rows
        newest = list(order_rows(customer, MAX_PAGE_SIZE, seed=seed))[::-1]
        self._page_rows = newest
        self._pages: dict[int, bytes] = {}
        self._export: tuple[bytes, ...] | None = None
        first = order_json(newest[0])
        # Split around the id so each answer is two concatenations, not a serialisation.
        self._order = _around(orjson.dumps(first), first["id"])
        self._summary = _around(orjson.dumps(summary_json(first, [], None)), first["id"])

    def order(self, order_id: bytes) -> bytes:
        return self._order[0] + order_id + self._order[1]

    def summary(self, order_id: bytes) -> bytes:
        return self._summary[0] + order_id + self._summary[1]

    def page(self, limit: int) -> bytes:
        if limit not in self._pages:
            rows = self._page_rows[:limit]
            cursor = encode_cursor((rows[-1][6], rows[-1][0]))
            page = {"items": [order_json(r) for r in rows], "next_cursor": cursor}
            self._pages[limit] = orjson.dumps(page)
        return self._pages[limit]

    def export_chunks(self) -> tuple[bytes, ...]:
        """Built at the first export (100,000 orders take a second and some 40 MB)."""
        if self._export is None:
            rows = list(order_rows(self._customer, self._export_rows, seed=self._seed))
            self._export = tuple(
                ndjson(rows[at : at + EXPORT_CHUNK]) for at in range(0, len(rows), EXPORT_CHUNK)
            )
        return self._export


def build(payloads: Payloads) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == "/healthz":
            await _answer(send, 200, b'{"status":"ok"}')
        elif path == "/v1/orders/export" and method == "GET":
            await _stream(send, payloads.export_chunks())
        elif path == "/v1/orders" and method == "GET":
            await _answer(send, 200, payloads.page(_limit(scope["query_string"])))
        elif path == "/v1/orders" and method == "POST":
            await _drain(receive)
            await _answer(send, 201, payloads.order(str(uuid.uuid4()).encode()))
        elif path.startswith(PREFIX) and method == "GET":
            rest = path[len(PREFIX) :]
            if rest.endswith(SUMMARY):
                await _answer(send, 200, payloads.summary(rest[: -len(SUMMARY)].encode()))
            else:
                await _answer(send, 200, payloads.order(rest.encode()))
        else:
            await _answer(send, 404, _NOT_FOUND)

    return app


def _around(body: bytes, order_id: str) -> tuple[bytes, bytes]:
    before, after = body.split(order_id.encode(), 1)
    return before, after


def _limit(query: bytes) -> int:
    values = parse_qs(query.decode("latin-1")).get("limit", [])
    try:
        return min(MAX_PAGE_SIZE, max(1, int(values[0]))) if values else DEFAULT_LIMIT
    except ValueError:
        return DEFAULT_LIMIT


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _stream(send: Send, chunks: tuple[bytes, ...]) -> None:
    headers = [(b"content-type", NDJSON.encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _drain(receive: Receive) -> None:
    while (await receive()).get("more_body", False):
        pass


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def main() -> None:
    arguments = serving.parser(__doc__, port=8094)
    arguments.add_argument("--customer", default="bench-0", help="whose seeded orders to answer")
    arguments.add_argument("--seed", type=int, default=0, help="bench.seed's --seed")
    arguments.add_argument("--export-rows", type=int, default=100_000, help="orders an export has")
    args = arguments.parse_args()
    payloads = Payloads(customer=args.customer, seed=args.seed, export_rows=args.export_rows)
    serving.serve(build(payloads), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
