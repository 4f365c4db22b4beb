"""A summary with notify down is degraded, not failed, as Ordermesh's is.

A second front tier of each baseline runs against the running back tier, with notify's
URL on a port where nothing listens.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from gateway.schemas import OrderSummary
from servicekit.testing.net import free_ports

from bench.baselines.launch import Implementation, Name, tiers
from bench.baselines.tests.conftest import JWT, Stack, auth

BASELINES: tuple[Name, ...] = ("sync", "default_async")


@pytest.fixture(scope="module")
def without_notify(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Each baseline's front tier, notify unreachable: name -> its URL."""
    nowhere, *ports = free_ports(1 + len(BASELINES))
    log_dir = tmp_path_factory.mktemp("degraded")
    fronts = {}
    for name, port in zip(BASELINES, ports, strict=True):
        back_port = int(stack.back_urls[name].rsplit(":", 1)[1])
        front = tiers(
            name,
            front_port=port,
            back_port=back_port,
            database_url="unused",
            notify_url=f"http://127.0.0.1:{nowhere}",
        )[-1]
        fronts[name] = Implementation([front], log_dir, JWT.environment())
    try:
        for front_tier in fronts.values():
            front_tier.start()
        for front_tier in fronts.values():
            front_tier.wait_ready()
        yield {name: front_tier.url for name, front_tier in fronts.items()}
    finally:
        for front_tier in fronts.values():
            front_tier.stop()


@pytest.mark.parametrize("baseline", BASELINES)
def test_a_summary_without_notify_is_degraded(
    stack: Stack, without_notify: dict[str, str], baseline: str
) -> None:
    customer = stack.seeded.customers[0]
    order_id = stack.seeded.ids[customer][0]
    with httpx.Client(base_url=without_notify[baseline], timeout=10) as client:
        answer = client.get(f"/v1/orders/{order_id}/summary", headers=auth(customer))
        foreign = client.get(f"/v1/orders/{order_id}/summary", headers=auth("someone-else"))
    assert answer.status_code == 200, answer.text
    summary = OrderSummary.model_validate_json(answer.content)
    assert (summary.degraded, summary.notifications) == (True, [])
    assert summary.degraded_reason is not None
    assert summary.degraded_reason.startswith("notify unavailable")
    assert str(summary.order.id) == order_id
    assert foreign.status_code == 404
