"""The event path: relay publish rate, notify consume rate, and commit-to-record latency.

Runs against a running stack (`make up`: orders with its relay, notify, RabbitMQ):

    .venv/bin/python bench/events.py --out bench/results/$(date +%F)/events.json

Per round:
- rates: `--events` outbox rows are written in one COPY transaction (valid
  order.created envelopes). The relay publish rate is rows / (time until the outbox
  backlog is empty). The consume rate is rows / (span of notify's recorded_at over
  those events), read from notify's own database, so it measures notify alone.
- latency: orders are created over gRPC at `--rate` per second for `--seconds`; for
  each, notify's recorded_at minus the event's occurred_at (set in the commit
  transaction) is the end-to-end latency. p50 and p99 are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from contracts.events import OrderCreated, OrderLine, OrderSnapshot
from contracts.orders.v1 import orders_pb2 as pb
from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub


def _envelope(order_id: uuid.UUID, customer: str) -> OrderCreated:
    now = datetime.now(UTC)
    snapshot = OrderSnapshot(
        id=order_id,
        customer_id=customer,
        status="pending",
        currency="EUR",
        total_minor=300,
        items=(OrderLine(sku="sku-1", quantity=2, unit_price_minor=150),),
        created_at=now,
        updated_at=now,
    )
    return OrderCreated(event_id=uuid.uuid4(), occurred_at=now, order=snapshot)


async def measure_rates(orders_db: str, notify_db: str, events: int) -> dict[str, float]:
    customer = f"bench-rates-{uuid.uuid4().hex[:8]}"
    rows = []
    for _ in range(events):
        order_id = uuid.uuid4()
        event = _envelope(order_id, customer)
        rows.append((event.event_id, event.event_type, order_id, event.model_dump_json()))
    orders = await asyncpg.connect(orders_db)
    notify = await asyncpg.connect(notify_db)
    try:
        started = time.perf_counter()
        await orders.copy_records_to_table(
            "outbox", records=rows, columns=["event_id", "event_type", "aggregate_id", "payload"]
        )
        published_after = await _wait(
            lambda: orders.fetchval("SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"),
            started,
        )
        await _wait(
            lambda: notify.fetchval(
                "SELECT count(*) = $1 FROM notifications WHERE customer_id = $2", events, customer
            ),
            started,
        )
        span = await notify.fetchval(
            "SELECT extract(epoch FROM max(recorded_at) - min(recorded_at)) "
            "FROM notifications WHERE customer_id = $1",
            customer,
        )
    finally:
        await orders.close()
        await notify.close()
    return {
        "relay_msgs_per_s": events / published_after,
        "consume_msgs_per_s": events / max(float(span), 1e-6),
    }


async def _wait(check: Any, started: float, seconds: float = 300) -> float:
    while not await check():
        if time.perf_counter() - started > seconds:
            raise SystemExit(f"not done within {seconds}s")
        await asyncio.sleep(0.01)
    return time.perf_counter() - started


async def measure_latency(
    target: str, notify_db: str, rate: float, seconds: float
) -> dict[str, float]:
    customer = f"bench-latency-{uuid.uuid4().hex[:8]}"
    count = int(rate * seconds)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = OrdersServiceStub(channel)
        started = time.perf_counter()
        calls = []
        for n in range(count):
            # Open loop: send on schedule whatever the replies do, like real traffic.
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            request = pb.CreateOrderRequest(
                customer_id=customer,
                idempotency_key=uuid.uuid4().hex,
                currency="EUR",
                items=[pb.LineItem(sku="sku-1", quantity=1, unit_price_minor=100)],
            )
            calls.append(asyncio.ensure_future(stub.CreateOrder(request, timeout=10)))
        await asyncio.gather(*calls)
    notify = await asyncpg.connect(notify_db)
    try:
        await _wait(
            lambda: notify.fetchval(
                "SELECT count(*) = $1 FROM notifications WHERE customer_id = $2", count, customer
            ),
            time.perf_counter(),
        )
        latencies = await notify.fetch(
            "SELECT extract(epoch FROM recorded_at - occurred_at) * 1000 AS ms "
            "FROM notifications WHERE customer_id = $1 ORDER BY ms",
            customer,
        )
    finally:
        await notify.close()
    values = [float(r["ms"]) for r in latencies]
    return {
        "p50_ms": values[len(values) // 2],
        "p99_ms": values[min(len(values) - 1, int(len(values) * 0.99))],
    }


def summarise(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--orders-db", default="postgresql://postgres@127.0.0.1:55432/orders")
    parser.add_argument("--notify-db", default="postgresql://postgres@127.0.0.1:55432/notify")
    parser.add_argument("--events", type=int, default=10_000, help="rows per rate round")
    parser.add_argument("--rate", type=float, default=200.0, help="orders/s for latency")
    parser.add_argument("--seconds", type=float, default=15.0, help="latency load duration")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    rates = [
        asyncio.run(measure_rates(args.orders_db, args.notify_db, args.events))
        for _ in range(args.rounds)
    ]
    latency = [
        asyncio.run(measure_latency(args.target, args.notify_db, args.rate, args.seconds))
        for _ in range(args.rounds)
    ]
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "rates": {k: summarise([r[k] for r in rates]) for k in rates[0]},
        "latency": {k: summarise([r[k] for r in latency]) for k in latency[0]},
    }
    print(_table(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


def _table(result: dict[str, Any]) -> str:
    def cell(s: dict[str, float], fmt: str) -> str:
        return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"

    r, lat = result["rates"], result["latency"]
    rate = result["settings"]["rate"]
    return "\n".join(
        [
            "| measure | median (min-max) |",
            "|---|---|",
            f"| relay publish, msgs/s | {cell(r['relay_msgs_per_s'], '{:,.0f}')} |",
            f"| notify consume, msgs/s | {cell(r['consume_msgs_per_s'], '{:,.0f}')} |",
            f"| commit to recorded p50 at {rate} orders/s, ms | {cell(lat['p50_ms'], '{:.1f}')} |",
            f"| commit to recorded p99 at {rate} orders/s, ms | {cell(lat['p99_ms'], '{:.1f}')} |",
        ]
    )


if __name__ == "__main__":
    main()
