"""Load on the orders service over gRPC: GetOrder and CreateOrder calls/s, export time.

Runs against a running orders service (`make up` starts one) and its database:

    .venv/bin/python bench/orders_grpc.py --target 127.0.0.1:50051 \
        --database-url postgresql://postgres@127.0.0.1:55432/orders

Each round runs GetOrder, then CreateOrder, for `--duration` seconds with
`--concurrency` calls in flight per client process; the export streams
`--export-rows` orders seeded with COPY and is timed against a plain
`COPY (SELECT ...) TO STDOUT` of the same rows. Medians with min and max over the
rounds are printed as a table and written as JSON. The clients are Python too, so
the server's CPU share is reported: near 100% means the server is the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
import psutil
from contracts.orders.v1 import orders_pb2 as pb
from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub
from orders.repository import ORDER_COLUMNS


@dataclass
class LoadResult:
    calls: int
    errors: int
    seconds: float
    latencies_ms: list[float]


async def _load(
    target: str, kind: str, ids: list[str], customer: str, concurrency: int, duration: float
) -> LoadResult:
    latencies: list[float] = []
    calls = errors = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = OrdersServiceStub(channel)
        stop_at = time.perf_counter() + duration

        async def worker(n: int) -> None:
            nonlocal calls, errors
            i = n
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    if kind == "get":
                        await stub.GetOrder(
                            pb.GetOrderRequest(customer_id=customer, order_id=ids[i % len(ids)]),
                            timeout=5,
                        )
                    else:
                        await stub.CreateOrder(_create(customer, uuid.uuid4().hex), timeout=5)
                except grpc.aio.AioRpcError:
                    errors += 1
                else:
                    calls += 1
                    if calls % 10 == 0:  # a sample is enough for percentiles
                        latencies.append((time.perf_counter() - started) * 1000)
                i += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        return LoadResult(calls, errors, time.perf_counter() - started, latencies)


def _process(args: tuple[str, str, list[str], str, int, float]) -> LoadResult:
    return asyncio.run(_load(*args))


def _create(customer: str, key: str) -> pb.CreateOrderRequest:
    return pb.CreateOrderRequest(
        customer_id=customer,
        idempotency_key=key,
        currency="EUR",
        items=[
            pb.LineItem(sku="sku-1", quantity=2, unit_price_minor=150),
            pb.LineItem(sku="sku-2", quantity=1, unit_price_minor=990),
        ],
    )


def run_load(
    target: str,
    kind: str,
    ids: list[str],
    customer: str,
    *,
    processes: int,
    concurrency: int,
    duration: float,
    server: psutil.Process | None,
) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        if server is not None:
            server.cpu_percent()  # starts the measurement window
        parts = pool.map(
            _process, [(target, kind, ids, customer, concurrency, duration)] * processes
        )
        server_cpu = server.cpu_percent() if server is not None else float("nan")
    calls = sum(p.calls for p in parts)
    seconds = max(p.seconds for p in parts)
    latencies = sorted(x for p in parts for x in p.latencies_ms)
    return {
        "calls_per_s": calls / seconds,
        "errors": float(sum(p.errors for p in parts)),
        "p50_ms": _percentile(latencies, 50),
        "p99_ms": _percentile(latencies, 99),
        "server_cpu_percent": server_cpu,
    }


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q / 100))]


async def seed_orders(target: str, customer: str, count: int) -> list[str]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = OrdersServiceStub(channel)
        replies = await asyncio.gather(
            *(stub.CreateOrder(_create(customer, f"seed-{n}")) for n in range(count))
        )
    return [r.order.id for r in replies]


async def seed_copy(database_url: str, customer: str, count: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        start = datetime(2025, 1, 1, tzinfo=UTC)
        items = '[{"sku": "sku-1", "quantity": 2, "unit_price_minor": 150}]'
        await conn.copy_records_to_table(
            "orders",
            records=[
                (
                    uuid.uuid4(),
                    customer,
                    "pending",
                    "EUR",
                    300,
                    items,
                    start + timedelta(milliseconds=n),
                    start + timedelta(milliseconds=n),
                )
                for n in range(count)
            ],
            columns=ORDER_COLUMNS,
        )
        await conn.execute("ANALYZE orders")
    finally:
        await conn.close()


async def time_export(target: str, customer: str) -> tuple[float, int]:
    rows = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = OrdersServiceStub(channel)
        started = time.perf_counter()
        async for reply in stub.ExportOrders(
            pb.ExportOrdersRequest(customer_id=customer), timeout=600
        ):
            rows += len(reply.orders)
    return time.perf_counter() - started, rows


async def time_copy(database_url: str, customer: str) -> float:
    conn = await asyncpg.connect(database_url)
    try:
        started = time.perf_counter()
        await conn.copy_from_query(
            f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE customer_id = $1 "
            "ORDER BY created_at, id",
            customer,
            output=_discard,
        )
        return time.perf_counter() - started
    finally:
        await conn.close()


async def _discard(_: bytes) -> None:
    return None


def _server_process(target: str) -> psutil.Process | None:
    port = int(target.rsplit(":", 1)[1])
    for conn in psutil.net_connections("tcp"):
        address = conn.laddr
        if conn.status != psutil.CONN_LISTEN or (isinstance(address, tuple) and not address):
            continue
        if address.port == port and conn.pid:
            return psutil.Process(conn.pid)
    return None


def summarise(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:55432/orders")
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight per process")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--export-rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    args = parser.parse_args()

    server = _server_process(args.target)
    customer = f"bench-{uuid.uuid4().hex[:8]}"
    ids = asyncio.run(seed_orders(args.target, customer, 1000))
    rounds: dict[str, list[dict[str, float]]] = {"GetOrder": [], "CreateOrder": []}
    for _ in range(args.rounds):
        for name, kind in (("GetOrder", "get"), ("CreateOrder", "create")):
            rounds[name].append(
                run_load(
                    args.target,
                    kind,
                    ids,
                    customer,
                    processes=args.processes,
                    concurrency=args.concurrency,
                    duration=args.duration,
                    server=server,
                )
            )

    exporter = f"bench-export-{uuid.uuid4().hex[:8]}"
    asyncio.run(seed_copy(args.database_url, exporter, args.export_rows))
    exports, copies = [], []
    for _ in range(args.rounds):
        seconds, rows = asyncio.run(time_export(args.target, exporter))
        if rows != args.export_rows:
            raise SystemExit(f"export returned {rows} rows, expected {args.export_rows}")
        exports.append(seconds)
        copies.append(asyncio.run(time_copy(args.database_url, exporter)))

    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "load": {
            name: {metric: summarise([r[metric] for r in runs]) for metric in runs[0]}
            for name, runs in rounds.items()
        },
        "export": {
            "rows": args.export_rows,
            "seconds": summarise(exports),
            "copy_seconds": summarise(copies),
            "ratio_to_copy": summarise([e / c for e, c in zip(exports, copies, strict=True)]),
        },
    }
    print(_table(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


def _table(result: dict) -> str:  # type: ignore[type-arg]
    def cell(s: dict[str, float], fmt: str = "{:,.0f}") -> str:
        return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"

    lines = [
        "| RPC | calls/s median (min-max) | p50 ms | p99 ms | errors | server CPU % |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in result["load"].items():
        lines.append(
            f"| {name} | {cell(m['calls_per_s'])} | {cell(m['p50_ms'], '{:.1f}')} | "
            f"{cell(m['p99_ms'], '{:.1f}')} | {m['errors']['max']:.0f} | "
            f"{cell(m['server_cpu_percent'])} |"
        )
    e = result["export"]
    lines += [
        "",
        f"ExportOrders of {e['rows']:,} orders: {cell(e['seconds'], '{:.2f}')} s; "
        f"COPY TO STDOUT of the same rows: {cell(e['copy_seconds'], '{:.2f}')} s; "
        f"ratio {cell(e['ratio_to_copy'], '{:.1f}')}x",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
