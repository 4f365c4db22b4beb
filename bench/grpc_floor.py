"""The floor of one grpc.aio hop: CPU per unary call with nothing behind it.

A server answering `GetOrder` from memory (the seeded orders' shape, no database, no
interceptors, no tracing) in a process of its own, and a client with `--concurrency`
calls in flight, both on uvloop as the services run, each pinned to a CPU of its
own when there are two. It measures what the gateway -> orders hop costs before any
of Ordermesh's code runs, the part of a read no change to Ordermesh can remove:

    .venv/bin/python bench/grpc_floor.py --rounds 3 --duration 10 --out floor.json

Prints and writes calls/s and the CPU milliseconds per call of the client and the
server process, median with min and max over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import time
from pathlib import Path
from typing import Any

import grpc
import psutil
import uvloop
from contracts.orders.v1 import orders_pb2 as pb
from contracts.orders.v1 import orders_pb2_grpc as rpc
from google.protobuf.timestamp_pb2 import Timestamp
from servicekit.testing.net import free_ports

CREATED = Timestamp(seconds=1_735_689_600)
ORDER = pb.Order(
    id="f192e671-47a0-4ebf-a439-bc79859f6ce0",
    customer_id="bench-1",
    status=pb.ORDER_STATUS_PENDING,
    currency="EUR",
    total_minor=1290,
    items=[
        pb.LineItem(sku="sku-1", quantity=2, unit_price_minor=150),
        pb.LineItem(sku="sku-2", quantity=1, unit_price_minor=990),
    ],
    created_at=CREATED,
    updated_at=CREATED,
)


SERVICE = "ordermesh.orders.v1.OrdersService"


async def get_order(
    request: pb.GetOrderRequest, context: grpc.aio.ServicerContext[Any, Any]
) -> pb.GetOrderResponse:
    return pb.GetOrderResponse(order=ORDER)


# Only GetOrder, registered as the generated code would register it.
HANDLER = grpc.method_handlers_generic_handler(
    SERVICE,
    {
        "GetOrder": grpc.unary_unary_rpc_method_handler(
            get_order,
            request_deserializer=pb.GetOrderRequest.FromString,
            response_serializer=pb.GetOrderResponse.SerializeToString,
        )
    },
)


def _pin(cpu: int) -> None:
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {cpu})


def _serve(port: int, ready: Any) -> None:
    _pin(1)

    async def serve() -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((HANDLER,))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.set()
        await server.wait_for_termination()

    uvloop.run(serve())


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def _round(
    stub: rpc.OrdersServiceStub, server: psutil.Process, concurrency: int, seconds: float
) -> dict[str, float]:
    request = pb.GetOrderRequest(customer_id="bench-1", order_id=ORDER.id)
    calls = 0
    stop = time.monotonic() + seconds

    async def caller() -> None:
        nonlocal calls
        while time.monotonic() < stop:
            await stub.GetOrder(request, timeout=5)
            calls += 1

    me = psutil.Process()
    client_before, server_before, started = _cpu(me), _cpu(server), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "calls_per_s": calls / elapsed,
        "client_ms_per_call": 1000 * (_cpu(me) - client_before) / calls,
        "server_ms_per_call": 1000 * (_cpu(server) - server_before) / calls,
    }


async def measure(port: int, server: psutil.Process, args: argparse.Namespace) -> list[Any]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = rpc.OrdersServiceStub(channel)
        await _round(stub, server, args.concurrency, min(1.0, args.duration))  # warm-up
        return [
            await _round(stub, server, args.concurrency, args.duration) for _ in range(args.rounds)
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per round")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    port = free_ports(1)[0]
    ready = multiprocessing.Event()
    serving = multiprocessing.Process(target=_serve, args=(port, ready), daemon=True)
    serving.start()
    try:
        if not ready.wait(30):
            raise SystemExit("the in-memory gRPC server did not start")
        _pin(0)
        rounds = uvloop.run(measure(port, psutil.Process(serving.pid), args))
    finally:
        serving.terminate()
        serving.join(10)
    summary = {
        key: {
            "median": statistics.median(r[key] for r in rounds),
            "min": min(r[key] for r in rounds),
            "max": max(r[key] for r in rounds),
        }
        for key in rounds[0]
    }
    result = {
        "what": "grpc.aio unary GetOrder answered from memory, one client and one server "
        "process on uvloop",
        "grpc": grpc.__version__,
        "concurrency": args.concurrency,
        "rounds": rounds,
        "summary": summary,
    }
    for key, value in summary.items():
        print(f"{key:<20} {value['median']:>9.3f} ({value['min']:.3f}-{value['max']:.3f})")
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
