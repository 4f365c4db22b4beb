"""Event latency for creates: commit to notify's record, at half the maximum create rate.

Orders are created through the gateway by an open-loop paced client (a request is sent
on schedule whatever the earlier answers do, as real traffic arrives; the rate is low
enough for one Python process, which wrk cannot pace). Each event's latency is what
notify's own database says: `recorded_at` (notify's clock_timestamp() at insert) minus
`occurred_at` (orders' clock, just before the statement that commits the order), as
bench/events.py measures it.
Only Ordermesh has an event path: the baselines publish nothing.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from typing import Any, Final

import aiohttp
import asyncpg

from bench.harness.dataset import token
from bench.harness.stats import percentile

BODY: Final = (
    b'{"currency": "EUR", "items": [{"sku": "tea", "quantity": 1, "unit_price_minor": 300}]}'
)
PER_SUBJECT: Final = 20.0  # creates/s per subject, well under the gateway's limit
RECORD_SECONDS: Final = 120.0


async def probe(url: str, notify_db: str, *, rate: float, seconds: float) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    subjects = [f"events-{run}-{n}" for n in range(max(1, math.ceil(rate / PER_SUBJECT)))]
    tokens = [token(s) for s in subjects]
    count = max(1, int(rate * seconds))
    late = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def create(n: int) -> int:
            headers = {
                "Authorization": f"Bearer {tokens[n % len(tokens)]}",
                "Content-Type": "application/json",
                "Idempotency-Key": f"{run}-{n}",
            }
            async with session.post(f"{url}/v1/orders", data=BODY, headers=headers) as answer:
                await answer.read()
                return answer.status

        started = time.perf_counter()
        calls = []
        for n in range(count):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.01:
                late += 1
            calls.append(asyncio.ensure_future(create(n)))
        statuses = await asyncio.gather(*calls)
        sent_seconds = time.perf_counter() - started
    created = sum(1 for s in statuses if s == 201)
    latencies = await _recorded(notify_db, subjects, created)
    return {
        "rate": rate,
        "seconds": seconds,
        "sent": count,
        "achieved_rate": count / sent_seconds,
        "late_sends": late,
        "created": created,
        "recorded": len(latencies),
        "p50_ms": percentile(latencies, 50) if latencies else None,
        "p99_ms": percentile(latencies, 99) if latencies else None,
        "max_ms": latencies[-1] if latencies else None,
    }


async def _recorded(notify_db: str, subjects: list[str], expected: int) -> list[float]:
    """Latencies (ms, ascending) once notify holds all `expected` events, or after a wait."""
    conn = await asyncpg.connect(notify_db)
    try:
        deadline = time.perf_counter() + RECORD_SECONDS
        while time.perf_counter() < deadline:
            found = await conn.fetchval(
                "SELECT count(*) FROM notifications WHERE customer_id = ANY($1)", subjects
            )
            if found >= expected:
                break
            await asyncio.sleep(0.2)
        rows = await conn.fetch(
            "SELECT extract(epoch FROM recorded_at - occurred_at) * 1000 AS ms "
            "FROM notifications WHERE customer_id = ANY($1) ORDER BY ms",
            subjects,
        )
    finally:
        await conn.close()
    return [float(r["ms"]) for r in rows]
