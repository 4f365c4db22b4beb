"""Where the gateway's CPU per read goes: the app in-process, a part at a time.

`GET /v1/orders/{id}` is driven straight into the gateway's ASGI app (no sockets, no
HTTP parsing), with orders answered from memory (no gRPC hop): what remains is the
gateway's own code and the libraries it is built on. Each variant runs in a process
of its own, since the tracing SDK is set up once per process; variants alternate
round by round, and each reports the process CPU (every thread, so the span
exporter's too) per request with 64 requests in flight:

- `handler`: the route's own work, order to JSON (`gateway.convert.order_json`, orjson);
- `fastapi`: the FastAPI app alone (routing, path parameter, response), the
  principal set as the authentication middleware would;
- `routes`: what the chain ends in, the direct read route (gateway.read_route) in
  front of FastAPI, the principal set the same way;
- `chain, reads via FastAPI`: the whole app as `build_app` makes it, tracing and
  request metrics off, with `GATEWAY_DIRECT_READS=false`;
- `chain`: the same with the direct read route, as the gateway runs by default;
- `chain+metrics`: request metrics on;
- `chain+metrics+tracing 0%`: tracing on, no request sampled;
- `defaults`: sampling at its default, 10%, spans exported over OTLP/HTTP to a
  receiver in the parent process, as a collector would take them;
- `tracing 100%`: every request sampled.

    .venv/bin/python bench/gateway_layers.py --rounds 3 --requests 20000 --out layers.json

Differences between neighbours are the cost of a part: what is left of a read once
the gRPC hop (bench/grpc_floor.py) and uvicorn's HTTP handling are set aside.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

# name -> (inner app, environment for the variant's process)
_OFF: Final = {"OTEL_SDK_DISABLED": "true", "GATEWAY_REQUEST_METRICS": "false"}
_METRICS: Final = {"OTEL_SDK_DISABLED": "true", "GATEWAY_REQUEST_METRICS": "true"}
_TRACED: Final = {"OTEL_SDK_DISABLED": "false", "GATEWAY_REQUEST_METRICS": "true"}
VARIANTS: Final[dict[str, tuple[str, dict[str, str]]]] = {
    "handler": ("handler", _OFF),
    "fastapi": ("fastapi", _OFF),
    "routes": ("routes", _OFF),
    "chain, reads via FastAPI": ("app", {**_OFF, "GATEWAY_DIRECT_READS": "false"}),
    "chain": ("app", _OFF),
    "chain+metrics": ("app", _METRICS),
    "chain+metrics+tracing 0%": ("app", {**_TRACED, "OTEL_TRACES_SAMPLER_ARG": "0"}),
    "defaults": ("app", _TRACED),
    "tracing 100%": ("app", {**_TRACED, "OTEL_TRACES_SAMPLER_ARG": "1.0"}),
}
IN_FLIGHT: Final = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20_000, help="per variant and round")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(VARIANTS[args.child][0], args.requests)))
        return
    result = measure(args.variants, rounds=args.rounds, requests=args.requests)
    for name, summary in result["summary"].items():
        print(
            f"{name:<26} {summary['median']:7.1f} us/request "
            f"({summary['min']:.1f}-{summary['max']:.1f})"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


def measure(variants: list[str], *, rounds: int, requests: int) -> dict[str, Any]:
    from servicekit.testing.otlp import OtlpReceiver

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    with OtlpReceiver(keep_spans=False) as receiver:
        for round_ in range(rounds):
            shift = round_ % len(variants)
            for name in variants[shift:] + variants[:shift]:
                runs[name].append(_run_child(name, requests, receiver.endpoint))
        exported = receiver.posts
    return {
        "what": "GET /v1/orders/{id} into the gateway's ASGI app, orders from memory",
        "requests": requests,
        "in_flight": IN_FLIGHT,
        "otlp_posts": exported,
        "runs": runs,
        "summary": {name: _spread([r["us_per_request"] for r in runs[name]]) for name in variants},
    }


def _run_child(name: str, requests: int, endpoint: str) -> dict[str, Any]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        **VARIANTS[name][1],
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "GATEWAY_ENVIRONMENT": "development",  # its placeholder token secret is allowed
        "GATEWAY_RATE_LIMIT_PER_SECOND": "1000000",  # one subject, far past the default
        "GATEWAY_RATE_LIMIT_BURST": "1000000",
    }
    done = subprocess.run(  # noqa: S603 (this script)
        [sys.executable, __file__, f"--child={name}", f"--requests={requests}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"variant {name} failed:\n{done.stdout}\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _child(inner: str, requests: int) -> dict[str, Any]:
    import uvloop
    from servicekit.telemetry import tracing

    with tracing(service="gateway"):
        return uvloop.run(_drive(inner, requests))


async def _drive(inner: str, requests: int) -> dict[str, Any]:
    import orjson
    from contracts.orders.v1 import orders_pb2 as pb
    from gateway.convert import order_json
    from gateway.server import GatewayRuntime
    from gateway.settings import GatewaySettings
    from servicekit.lifecycle import settle_heap

    from bench.grpc_floor import ORDER
    from bench.harness.dataset import token

    runtime = GatewayRuntime(GatewaySettings())

    async def from_memory(*_: object) -> pb.Order:
        await asyncio.sleep(0)  # an answer arrives on a later turn of the loop, as a reply would
        return ORDER

    runtime.orders.get = from_memory  # type: ignore[method-assign,assignment]
    bearer = token("bench-layers")
    principal = runtime.authenticator.authenticate(f"Bearer {bearer}")

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = orjson.dumps(order_json(await from_memory()))
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def fastapi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["state"]["principal"] = principal
        await runtime.api(scope, receive, send)

    async def routes(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["state"]["principal"] = principal
        await runtime.routes(scope, receive, send)

    app = {"handler": handler, "fastapi": fastapi, "routes": routes, "app": runtime.app}[inner]
    path = f"/v1/orders/{uuid.uuid4()}"
    headers = [
        (b"host", b"127.0.0.1:8080"),
        (b"authorization", f"Bearer {bearer}".encode()),
        (b"user-agent", b"wrk"),
    ]
    statuses: dict[int, int] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] = statuses.get(message["status"], 0) + 1

    async def client(count: int) -> None:
        for _ in range(count):
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"",
                "root_path": "",
                "headers": headers,
                "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 8080),
                "state": {},
            }
            await app(scope, receive, send)

    per_client = max(1, requests // IN_FLIGHT)
    await asyncio.gather(*(client(max(1, per_client // 10)) for _ in range(IN_FLIGHT)))  # warm
    settle_heap()  # as serve() does once started
    statuses.clear()
    started = time.process_time()
    await asyncio.gather(*(client(per_client) for _ in range(IN_FLIGHT)))
    cpu = time.process_time() - started
    answered = per_client * IN_FLIGHT
    if statuses != {200: answered}:
        raise RuntimeError(f"expected {answered} answers of 200, got {statuses}")
    return {"requests": answered, "cpu_s": cpu, "us_per_request": cpu / answered * 1e6}


if __name__ == "__main__":
    main()
