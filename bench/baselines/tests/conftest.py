"""One session of real processes, all on the same seeded data.

A database of the orders schema and one of notify's, made for this session on the
machine's PostgreSQL (ORDERMESH_TEST_PG_URL, default 127.0.0.1:5432) and seeded with
bench/seed.py's command line; Ordermesh in this process (tests/ordermesh.py); each
baseline's tiers and the ceiling as the processes a harness would start. Starting
processes per test would take most of the time budget, so the tests isolate by
customer instead: every test that writes uses a token subject of its own, and the
seeded customers are only read.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from servicekit.testing import postgres as pgtest
from servicekit.testing.net import free_ports

from bench.baselines.launch import REPO_ROOT, Implementation, Name
from bench.baselines.tests.ordermesh import BackgroundLoop, Jwt, Ordermesh
from bench.seed import create_database

NEEDED_BY = "the baselines' tests"
JWT = Jwt(secret="a-test-secret-for-the-baselines-32b+", issuer="bench-test", audience="bench-api")
SEEDED_ORDERS = 12  # over two customers
NOTIFICATIONS_PER_ORDER = 2
CEILING_EXPORT_ROWS = 700  # more than one 500-line chunk


@dataclass(frozen=True)
class Seeded:
    customers: list[str]
    ids: dict[str, list[str]]  # customer -> every seeded order id, oldest first


@dataclass(frozen=True)
class Stack:
    """What the tests talk to, by name: ordermesh, sync, default_async, ceiling."""

    urls: dict[str, str]
    back_urls: dict[str, str]  # the baselines' back tiers
    notify_url: str  # Ordermesh's notify, whose HTTP API the baselines' summaries call
    orders_db: str
    seeded: Seeded


def token(subject: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": subject, "iss": JWT.issuer, "aud": JWT.audience, "iat": now, "exp": now + 600}
    return jwt.encode(body | claims, JWT.secret, algorithm="HS256")


def auth(subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(subject)}"}


def new_subject() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:10]
    orders_db = pgtest.database_url(f"bench_orders_{suffix}")
    notify_db = pgtest.database_url(f"bench_notify_{suffix}")
    asyncio.run(pgtest.admin("SELECT 1", needed_by=NEEDED_BY))  # a clear failure if PG is down
    loop = BackgroundLoop()
    ordermesh: Ordermesh | None = None
    implementations: list[Implementation] = []
    try:
        asyncio.run(create_database(notify_db, package="notify"))
        seeded = _seed(orders_db, notify_db, prefix=f"seeded-{suffix}")
        ordermesh = Ordermesh(loop, orders_db=orders_db, notify_db=notify_db, jwt=JWT)
        ordermesh.start()
        implementations = _start_baselines(
            tmp_path_factory.mktemp("logs"), orders_db, ordermesh.notify_url, seeded
        )
        urls = {"ordermesh": ordermesh.url} | {
            name: impl.url for name, impl in zip(BASELINES, implementations, strict=True)
        }
        backs = {impl.tiers[0].name.split(".")[0]: impl.tiers[0].url for impl in implementations}
        backs.pop("ceiling")
        yield Stack(
            urls=urls,
            back_urls=backs,
            notify_url=ordermesh.notify_url,
            orders_db=orders_db,
            seeded=seeded,
        )
    finally:
        for implementation in implementations:
            implementation.stop()
        if ordermesh is not None:
            ordermesh.stop()
        loop.close()
        for url in (orders_db, notify_db):
            name = url.rsplit("/", 1)[1]
            asyncio.run(
                pgtest.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', needed_by=NEEDED_BY)
            )


BASELINES = ("sync", "default_async", "ceiling")


def _seed(orders_db: str, notify_db: str, *, prefix: str) -> Seeded:
    """bench/seed.py as a harness runs it: create, seed orders and notifications."""
    command = [
        sys.executable,
        "bench/seed.py",
        f"--database-url={orders_db}",
        "--create",
        f"--orders={SEEDED_ORDERS}",
        "--customers=2",
        f"--prefix={prefix}",
        f"--sample={SEEDED_ORDERS}",
        f"--notify-database-url={notify_db}",
        f"--notifications={NOTIFICATIONS_PER_ORDER}",
    ]
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["notifications"] == SEEDED_ORDERS * NOTIFICATIONS_PER_ORDER
    ids = {c["customer_id"]: c["sample_ids"] for c in result["customers"]}
    return Seeded(customers=list(ids), ids=ids)


def _start_baselines(
    log_dir: Path, orders_db: str, notify_url: str, seeded: Seeded
) -> list[Implementation]:
    ports = free_ports(5)
    two_tiers: list[tuple[Name, int, int]] = [
        ("sync", ports[0], ports[1]),
        ("default_async", ports[2], ports[3]),
    ]
    started = [
        Implementation.of(
            name,
            log_dir=log_dir,
            environ=JWT.environment(),
            front_port=front_port,
            back_port=back_port,
            database_url=orders_db,
            notify_url=notify_url,
        )
        for name, front_port, back_port in two_tiers
    ]
    ceiling_args = (f"--customer={seeded.customers[0]}", f"--export-rows={CEILING_EXPORT_ROWS}")
    started.append(
        Implementation.of(
            "ceiling", log_dir=log_dir, front_port=ports[4], ceiling_args=ceiling_args
        )
    )
    try:
        for implementation in started:  # all at once: they import side by side
            implementation.start()
        for implementation in started:
            implementation.wait_ready()
    except BaseException:
        for implementation in started:
            implementation.stop()
        raise
    return started


@pytest.fixture(scope="session")
def clients(stack: Stack) -> Iterator[dict[str, httpx.Client]]:
    made = {name: httpx.Client(base_url=url, timeout=10) for name, url in stack.urls.items()}
    yield made
    for client in made.values():
        client.close()
