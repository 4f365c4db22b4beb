"""Load on the gateway's public API with wrk: GET /v1/orders/{id} requests/s and latency.

Runs against a running stack whose gateway lets one subject through at full speed
(the default per-subject rate limit, 100/s, would answer nearly everything with 429):

    GATEWAY_RATE_LIMIT_PER_SECOND=1000000 GATEWAY_RATE_LIMIT_BURST=1000000 make up
    .venv/bin/python bench/gateway_http.py --url http://127.0.0.1:8080

It creates one order through the API, then runs `wrk --latency` for `--duration`
seconds per round at each `--connections` level (one wrk thread), `--rounds` times,
and reports medians with min and max of requests/s, p50 and p99. The load generator
is wrk, not Python: one Python client process tops out near 1,000 requests/s. Every
non-2xx answer is counted; a round with any is reported, never hidden.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from ordermesh.token import SECRET_VARIABLE, mint_dev_token

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def token(environ: dict[str, str]) -> str:
    """A day-long dev token for a subject of its own (the gateway's own minting)."""
    subject = f"bench-{uuid.uuid4().hex[:8]}"
    return mint_dev_token(subject=subject, ttl_seconds=24 * 3600, environ=environ)


def create_order(url: str, bearer: str) -> str:
    response = httpx.post(
        f"{url}/v1/orders",
        json={"currency": "EUR", "items": [{"sku": "tea", "quantity": 2, "unit_price_minor": 450}]},
        headers={"Authorization": f"Bearer {bearer}", "Idempotency-Key": uuid.uuid4().hex},
        timeout=10,
    )
    response.raise_for_status()
    order_id: str = response.json()["id"]
    return order_id


def run_wrk(url: str, bearer: str, connections: int, duration: float) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.headers["Authorization"] = "Bearer {bearer}"\n')
    try:
        output = subprocess.run(  # noqa: S603 (wrk, with our own arguments)
            [
                *("wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency"),
                *("--timeout", "10s", "-s", script.name, url),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(script.name)
    return parse_wrk(output)


def parse_wrk(output: str) -> dict[str, float]:
    """requests/s, p50 and p99 (ms), requests and non-2xx answers from wrk's report."""

    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        assert match, f"no {percent}% line in wrk output:\n{output}"
        return float(match.group(1)) * _UNITS[match.group(2)]

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in", output, re.MULTILINE)
    assert rps, f"unexpected wrk output:\n{output}"
    assert total, f"unexpected wrk output:\n{output}"
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "requests_per_second": float(rps.group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "requests": float(total.group(1)),
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
        "socket_errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0,
    }


def wait_until_idle(url: str, seconds: float = 30) -> None:
    """Let the gateway finish what wrk abandoned at the end of a run (else the next run
    starts against a full in-flight limit and sees 503s that belong to the last one)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
        match = re.search(r"^ordermesh_http_server_requests_in_flight ([\d.]+)$", metrics, re.M)
        if match is None or float(match.group(1)) == 0:
            return
        time.sleep(0.2)


def gateway_process(url: str) -> psutil.Process | None:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    for conn in psutil.net_connections("tcp"):
        address = conn.laddr
        listening = conn.status == psutil.CONN_LISTEN and conn.pid is not None
        if listening and isinstance(address, tuple) and address and address[1] == port:
            assert conn.pid is not None
            return psutil.Process(conn.pid)
    return None


def summarise(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument(
        "--jwt-secret", help="the gateway's HS256 secret (default: $GATEWAY_JWT_SECRET, else dev)"
    )
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")

    environ = dict(os.environ)
    if args.jwt_secret:
        environ[SECRET_VARIABLE] = args.jwt_secret
    bearer = token(environ)
    order_id = create_order(args.url, bearer)
    target = f"{args.url}/v1/orders/{order_id}"
    run_wrk(target, bearer, 64, 2)  # warm-up: connections, caches, JIT-free but still
    process = gateway_process(args.url)
    rounds: dict[int, list[dict[str, float]]] = {c: [] for c in args.connections}
    for _ in range(args.rounds):
        for connections in args.connections:
            wait_until_idle(args.url)
            cpu_before = process.cpu_times() if process else None
            started = time.perf_counter()
            measured = run_wrk(target, bearer, connections, args.duration)
            if process and cpu_before:
                cpu = process.cpu_times()
                used = cpu.user + cpu.system - cpu_before.user - cpu_before.system
                measured["gateway_cpu_percent"] = 100 * used / (time.perf_counter() - started)
            rounds[connections].append(measured)

    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
        "endpoint": "GET /v1/orders/{id}",
        "duration_seconds": args.duration,
        "rounds": args.rounds,
        "results": {
            str(c): {
                key: summarise([r[key] for r in runs])
                for key in runs[0]
                if key not in ("requests",)
            }
            for c, runs in rounds.items()
        },
        "raw": {str(c): runs for c, runs in rounds.items()},
    }
    print(_table(result))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")


def _table(result: dict[str, Any]) -> str:
    lines = [
        "| connections | requests/s | p50 ms | p99 ms | non-2xx | gateway CPU % |",
        "|---|---|---|---|---|---|",
    ]

    def cell(s: dict[str, float], fmt: str) -> str:
        return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"

    for connections, r in result["results"].items():
        cpu = cell(r["gateway_cpu_percent"], "{:.0f}") if "gateway_cpu_percent" in r else "-"
        lines.append(
            f"| {connections} | {cell(r['requests_per_second'], '{:,.0f}')} "
            f"| {cell(r['p50_ms'], '{:.1f}')} | {cell(r['p99_ms'], '{:.1f}')} "
            f"| {r['non_2xx']['max']:.0f} | {cpu} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
