"""Helpers shared by the orders tests: request builders, error-detail readers, bulk
seeding and a peak-RSS sampler."""

from __future__ import annotations

import asyncio
import socket
import threading
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import psutil
from contracts.orders.v1 import orders_pb2 as pb
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from orders.repository import ORDER_COLUMNS


def line(sku: str = "sku-1", quantity: int = 1, price: int = 100) -> pb.LineItem:
    return pb.LineItem(sku=sku, quantity=quantity, unit_price_minor=price)


def create_request(
    customer: str = "alice",
    key: str | None = None,
    items: list[pb.LineItem] | None = None,
    currency: str = "EUR",
) -> pb.CreateOrderRequest:
    return pb.CreateOrderRequest(
        customer_id=customer,
        idempotency_key=key if key is not None else uuid.uuid4().hex,
        items=items if items is not None else [line()],
        currency=currency,
    )


def field_violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """field -> description from the BadRequest detail of a failed call."""
    found: dict[str, str] = {}
    for detail in _details(error):
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            found.update({v.field: v.description for v in request.field_violations})
    return found


def error_reason(error: grpc.aio.AioRpcError) -> str | None:
    """The ErrorInfo reason of a failed call, if it has one."""
    for detail in _details(error):
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return None


def _details(error: grpc.aio.AioRpcError) -> list:  # type: ignore[type-arg]
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    return list(status.details) if status is not None else []


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def http_status(port: int, path: str) -> int:
    """Status of GET http://127.0.0.1:port/path; 0 when nothing answers."""

    def get() -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as reply:
                status: int = reply.status
                return status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0

    return await asyncio.to_thread(get)


async def seed(
    db: asyncpg.Connection,
    customer: str,
    count: int,
    *,
    items: str = '[{"sku": "sku-1", "quantity": 2, "unit_price_minor": 150}]',
    total_minor: int = 300,
) -> list[uuid.UUID]:
    """COPY `count` orders in, one second apart, oldest first; return their ids."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    records = [
        (oid, customer, "pending", "EUR", total_minor, items, t, t)
        for n, oid in enumerate(ids)
        for t in (start + timedelta(seconds=n),)
    ]
    await db.copy_records_to_table(
        "orders",
        records=records,
        columns=ORDER_COLUMNS,
    )
    await db.execute("ANALYZE orders")
    return ids


class PeakRss:
    """Samples this process's resident memory in a thread while the block runs."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self.baseline = self.peak = self._process.memory_info().rss

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 2**20
