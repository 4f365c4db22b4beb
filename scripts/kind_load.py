"""Load for the kind autoscaling check, run inside the cluster as a Job.

scripts/kind-autoscaling-check.sh puts this file in a ConfigMap and runs it in the
gateway's own image (it has Python, httpx and PyJWT, and is already on the node):

    reads   GET /v1/orders/<random id> at --rate requests per second for --seconds
            (authenticated 404s: every one is counted in the gateway's request rate)
    orders  POST /v1/orders --count times, --concurrency at once (each one an event
            for notify's queue)

Tokens are signed with the gateway's dev secret (ORDERMESH_JWT_SECRET). Each worker is
its own subject and a new subject takes over every few orders, so the per-subject rate
limit never turns the load into 429s. Prints a summary line of status counts and exits
non-zero when no request succeeded.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import time
import uuid
from collections.abc import Mapping

import httpx
import jwt

ISSUER = "ordermesh-dev"
AUDIENCE = "ordermesh-api"
# Below the kind values' GATEWAY_RATE_LIMIT_PER_SECOND (20) for any one subject.
PER_SUBJECT_RATE = 15.0
ORDERS_PER_SUBJECT = 30
ORDER = {"currency": "EUR", "items": [{"sku": "load", "quantity": 1, "unit_price_minor": 100}]}


def token(secret: str, subject: str) -> str:
    now = int(time.time())
    claims = {"sub": subject, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600}
    return jwt.encode(claims, secret, algorithm="HS256")


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(secret, f'load-{uuid.uuid4().hex[:12]}')}"}


async def reads(client: httpx.AsyncClient, secret: str, rate: float, seconds: float) -> list[int]:
    """GETs at `rate` per second in total, paced per worker, for `seconds`."""
    workers = max(1, int(rate // PER_SUBJECT_RATE) + (rate % PER_SUBJECT_RATE > 0))
    interval = workers / rate
    deadline = time.monotonic() + seconds
    statuses: list[int] = []

    async def worker() -> None:
        headers = auth(secret)
        next_at = time.monotonic()
        while next_at < deadline:
            statuses.append(
                await status_of(client.get(f"/v1/orders/{uuid.uuid4()}", headers=headers))
            )
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return statuses


async def orders(client: httpx.AsyncClient, secret: str, count: int, concurrency: int) -> list[int]:
    """`count` order creations, `concurrency` at once."""
    remaining = iter(range(count))
    statuses: list[int] = []

    async def worker() -> None:
        headers: Mapping[str, str] = {}
        for number in remaining:
            if number % ORDERS_PER_SUBJECT == 0 or not headers:
                headers = auth(secret)
            request = client.post(
                "/v1/orders", json=ORDER, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
            )
            statuses.append(await status_of(request))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


async def status_of(request: collections.abc.Awaitable[httpx.Response]) -> int:
    try:
        return (await request).status_code
    except httpx.HTTPError:
        return 0  # connection refused, reset, timeout: counted, not fatal


async def main_async(args: argparse.Namespace) -> int:
    secret = os.environ["ORDERMESH_JWT_SECRET"]
    async with httpx.AsyncClient(base_url=args.url, timeout=10) as client:
        if args.mode == "reads":
            statuses = await reads(client, secret, args.rate, args.seconds)
        else:
            statuses = await orders(client, secret, args.count, args.concurrency)
    counts = collections.Counter(statuses)
    summary = " ".join(f"{status}={n}" for status, n in sorted(counts.items()))
    sys.stdout.write(f"kind_load {args.mode}: {len(statuses)} requests, {summary}\n")
    succeeded = counts[404] if args.mode == "reads" else counts[201]
    return 0 if succeeded else 1


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the gateway's base URL")
    parser.add_argument("--mode", choices=["reads", "orders"], required=True)
    parser.add_argument("--rate", type=float, default=100.0, help="reads: requests per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="reads: how long")
    parser.add_argument("--count", type=int, default=1000, help="orders: how many")
    parser.add_argument("--concurrency", type=int, default=8, help="orders: at once")
    return parser


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(main_async(parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
