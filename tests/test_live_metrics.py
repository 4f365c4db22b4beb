"""Live metrics: the dashboards and rules as code, checked against a real Prometheus.

The test starts the local stack (the `make up` machinery, in-process, on free ports,
with its own state directory and RabbitMQ vhost) with Prometheus scraping every
second, drives the public API like a client would (orders created, replayed, read,
listed, summarised, cancelled, exported, and a few refused), and waits until notify
has recorded the events. Then every query that a person or an alert relies on must
return data from Prometheus:

- `up` is 1 for every job: gateway, orders, notify, rabbitmq;
- the `expr` of every panel target of every dashboard in observability/grafana/dashboards
  (`$__rate_interval` read as 1m; any other `$` variable is an error);
- the expression of every recording rule in observability/prometheus/rules;

and Prometheus reports every rule file loaded, with every rule (recording and
alerting) evaluated without error. A dashboard that queries a metric nobody exports
fails here, listing the query.

Needs the machine's RabbitMQ with its rabbitmq_prometheus plugin (127.0.0.1:15692)
and Prometheus on PATH; scripts/ensure-prereqs.sh (run by `make test`) provides both.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from ordermesh.localbroker import amqp_url, create_vhost, delete_vhost
from ordermesh.paths import PROMETHEUS_CONFIG

from tests.e2e.support import ORDER, assert_problem, create_order, poll_until
from tests.e2e.target import Target
from tests.local_stack import up_environment
from tests.scraped_stack import scraped_stack

REPO_ROOT = Path(__file__).resolve().parents[1]
# Module constants, so a try of this test can point them at folders of its own; the
# rules are those the config loads (its rule_files: rules/*.yml beside it).
DASHBOARDS_DIR = REPO_ROOT / "observability" / "grafana" / "dashboards"
CONFIG = PROMETHEUS_CONFIG
JOBS = ("gateway", "orders", "notify", "rabbitmq")
SCRAPE_SECONDS = 1.0
DATA_SECONDS = 60.0
START_SECONDS = 45.0
RATE_INTERVAL = "1m"
# Grafana variables: $name, ${name}, ${name:format}, [[name]] (not a regex anchor `$`).
_VARIABLE = re.compile(r"\$\{?[A-Za-z_]\w*|\[\[\w+\]\]")
ORDERS_CREATED = 3  # and one more, created twice with the same Idempotency-Key
# order.created for each order, and order.cancelled for the one that is cancelled
EVENTS_EXPECTED = ORDERS_CREATED + 1 + 1


@dataclass(frozen=True)
class Query:
    """A PromQL expression and where it comes from (for the failure message)."""

    source: str
    expr: str


@dataclass(frozen=True)
class Running:
    gateway: str
    prometheus: str


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Running]:
    vhost = f"live-metrics-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(create_vhost, vhost)
    environ = up_environment(AMQP_URL=amqp_url(vhost))
    # The gateway's defaults, never a developer's GATEWAY_ settings (the JWT secret above all).
    environ = {k: v for k, v in environ.items() if not k.startswith("GATEWAY_")}
    environ["GATEWAY_DRAIN_SECONDS"] = "1"
    try:
        async with scraped_stack(
            tmp_path / "state",
            environ,
            scrape_seconds=SCRAPE_SECONDS,
            start_seconds=START_SECONDS,
            prometheus_config=CONFIG,
        ) as ports:
            yield Running(
                gateway=f"http://127.0.0.1:{ports.gateway}",
                prometheus=f"http://127.0.0.1:{ports.prometheus}",
            )
    finally:
        await asyncio.to_thread(delete_vhost, vhost)


@pytest.fixture
def dashboard_queries() -> list[Query]:
    return queries_of_dashboards(DASHBOARDS_DIR)


@pytest.fixture
def rule_files() -> list[Path]:
    found = sorted(CONFIG.parent.joinpath("rules").glob("*.yml"))
    assert found, f"no rule files (*.yml) beside {CONFIG} in rules/: nothing to check"
    return found


# The folders are read first (fixtures in argument order): empty ones fail before the start.
async def test_every_dashboard_query_and_rule_has_data(
    dashboard_queries: list[Query], rule_files: list[Path], stack: Running
) -> None:
    rules_dir = rule_files[0].parent
    await drive_the_public_api(Target(url=stack.gateway))

    async with httpx.AsyncClient(base_url=stack.prometheus, timeout=10) as prometheus:
        groups = await loaded_rule_groups(prometheus, rule_files)
        recording = [
            Query(f"recording rule {rule['name']} ({Path(group['file']).name})", rule["query"])
            for group in groups
            for rule in group["rules"]
            if rule["type"] == "recording"
        ]
        alerting = [
            rule for group in groups for rule in group["rules"] if rule["type"] == "alerting"
        ]
        assert recording, f"no recording rule in {rules_dir}"
        assert alerting, f"no alerting rule in {rules_dir}"
        targets = [Query(f"scrape target {job}", f'up{{job="{job}"}} == 1') for job in JOBS]

        empty = await queries_without_data(prometheus, [*targets, *dashboard_queries, *recording])
        assert not empty, f"{len(empty)} queries returned no data after {DATA_SECONDS:g}s:\n" + (
            "\n".join(f"- {problem}" for problem in empty)
        )
        # Every `up` series of a job (rabbitmq has two endpoints) must be 1, not just one.
        down = await instant(prometheus, f'up{{job=~"{"|".join(JOBS)}"}} != 1')
        assert not down, f"scrape targets down: {down}"
        unhealthy = await rules_evaluated_without_error(prometheus)
        assert not unhealthy, "rules that Prometheus failed to evaluate:\n" + "\n".join(unhealthy)


def queries_of_dashboards(folder: Path) -> list[Query]:
    """The expr of every panel target of every dashboard, variables substituted."""
    files = sorted(folder.glob("*.json"))
    assert files, f"no dashboards (*.json) in {folder}: nothing to check"
    found: list[Query] = []
    unresolved: list[str] = []
    for file in files:
        dashboard = json.loads(file.read_text())
        for panel in _panels(dashboard):
            for target in panel.get("targets") or []:
                expr = target.get("expr")
                if not expr:
                    continue
                where = f"{file.name}: panel {panel.get('title')!r} ref {target.get('refId')}"
                expr = expr.replace("$__rate_interval", RATE_INTERVAL)
                variables = _VARIABLE.findall(expr)
                if variables:
                    unresolved.append(f"{where}: {', '.join(variables)} in {expr}")
                found.append(Query(where, expr))
    assert not unresolved, (
        "dashboard queries may use no variable but $__rate_interval (this test could not "
        "run them):\n" + "\n".join(unresolved)
    )
    assert found, f"the dashboards in {folder} have no panel target with an expr"
    return found


def _panels(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in rows (`panels`, or `rows` in old dashboards)."""
    for key in ("panels", "rows"):
        for panel in node.get(key) or []:
            yield panel
            yield from _panels(panel)


async def drive_the_public_api(target: Target) -> None:
    """What a client does in a session, and a few calls the gateway refuses."""
    customer = target.auth()
    async with httpx.AsyncClient(base_url=target.url, timeout=15) as client:
        orders = [await create_order(client, customer) for _ in range(ORDERS_CREATED)]
        key = uuid.uuid4().hex
        orders.append(await create_order(client, customer, key=key))
        again = await client.post(
            "/v1/orders", json=ORDER, headers={**customer, "Idempotency-Key": key}
        )
        assert again.status_code == 201, again.text
        assert again.headers.get("Idempotent-Replayed") == "true", again.headers
        first, cancelled = orders[0]["id"], orders[1]["id"]

        assert (await client.get(f"/v1/orders/{first}", headers=customer)).status_code == 200
        listed = await client.get("/v1/orders", params={"limit": 10}, headers=customer)
        assert listed.status_code == 200, listed.text
        assert len(listed.json()["items"]) == len(orders)
        cancel = await client.post(f"/v1/orders/{cancelled}/cancel", headers=customer)
        assert cancel.status_code == 200, cancel.text
        export = await client.get("/v1/orders/export", headers=customer)
        assert export.status_code == 200, export.text
        assert len(export.text.splitlines()) == len(orders)

        assert_problem(await client.get("/v1/orders"), 401, "unauthorized")
        assert_problem(
            await client.get(f"/v1/orders/{uuid.uuid4()}", headers=customer), 404, "not-found"
        )
        assert_problem(
            await client.get(f"/v1/orders/{first}", headers=target.auth()), 404, "not-found"
        )

        async def all_recorded() -> int | None:
            """Events notify recorded for our orders, once all have arrived (summary)."""
            total = 0
            for order in orders:
                summary = await client.get(f"/v1/orders/{order['id']}/summary", headers=customer)
                assert summary.status_code == 200, summary.text
                total += len(summary.json()["notifications"])
            return total if total >= EVENTS_EXPECTED else None

        await poll_until(all_recorded, seconds=20, what="notify has recorded every event")


async def queries_without_data(client: httpx.AsyncClient, queries: list[Query]) -> list[str]:
    """Poll until every query has returned data once; what still has none at the deadline."""
    pending = dict.fromkeys(queries, "no data")
    deadline = time.monotonic() + DATA_SECONDS
    while pending and time.monotonic() < deadline:
        for query in list(pending):
            try:
                if await instant(client, query.expr):
                    del pending[query]
            except QueryError as exc:
                pending[query] = str(exc)
        await asyncio.sleep(SCRAPE_SECONDS)
    return [f"{query.source}: {query.expr}  [{why}]" for query, why in pending.items()]


class QueryError(Exception):
    """Prometheus refused a query (bad PromQL, say)."""


async def instant(client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    """The result of an instant query; an empty list when it has no data."""
    response = await client.get("/api/v1/query", params={"query": expr})
    body = response.json()
    if response.status_code != 200 or body.get("status") != "success":
        raise QueryError(f"{body.get('errorType')}: {body.get('error')}")
    result: list[dict[str, Any]] | dict[str, Any] = body["data"]["result"]
    # A scalar or string result is data too.
    return result if isinstance(result, list) else [result]


async def loaded_rule_groups(
    client: httpx.AsyncClient, rule_files: list[Path]
) -> list[dict[str, Any]]:
    """The rule groups Prometheus loaded; every file of the rules folder must have one."""
    groups: list[dict[str, Any]] = (await _rules(client))["groups"]
    # The stack hands Prometheus absolute paths (ordermesh.prometheus), as found here.
    loaded = {Path(group["file"]) for group in groups}
    missing = [str(file) for file in rule_files if file not in loaded]
    assert not missing, f"Prometheus loaded no rule group from: {', '.join(missing)}"
    return groups


async def rules_evaluated_without_error(client: httpx.AsyncClient) -> list[str]:
    """After a few evaluation cycles: each rule that never ran or last failed, and why."""
    problems: list[str] = []
    for _ in range(5):
        await asyncio.sleep(SCRAPE_SECONDS)
        problems = [
            f"- {rule['name']} ({Path(group['file']).name}): {rule['health']} "
            f"{rule.get('lastError') or ''}".rstrip()
            for group in (await _rules(client))["groups"]
            for rule in group["rules"]
            if rule["health"] != "ok" or rule.get("lastError")
        ]
        if not problems:
            break
    return problems


async def _rules(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/v1/rules")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data
