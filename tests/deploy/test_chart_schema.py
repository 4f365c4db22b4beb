"""values.schema.json refuses what would render a broken or unsafe release, and says
where: Helm checks it on every install, upgrade, template and lint."""

from __future__ import annotations

from typing import Any

import helm_python
import pytest
from ordermesh import chart

from tests.deploy.cases import CASES, values

REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"gatway": {"replicas": 2}}, "additional properties 'gatway' not allowed"),
    ({"gateway": {"autoscaling": {"maxReplica": 3}}}, "'maxReplica' not allowed"),
    ({"gateway": {"replicas": "two"}}, "at '/gateway/replicas': got string, want integer"),
    ({"autoscaling": {"engine": "kedaa"}}, "value must be one of 'keda', 'hpa', 'none'"),
    ({"notify": {"autoscaling": {"minReplicas": 0}}}, "/notify/autoscaling/minReplicas"),
    ({"environment": "staging"}, "at '/environment'"),
    ({"orders": {"image": {"tag": "latest"}}}, "at '/orders/image/tag'"),
    ({"gateway": {"config": {"GATEWAY_JWT_SECRET": "x" * 40}}}, "'GATEWAY_JWT_SECRET'"),
    (
        {"orders": {"config": {"ORDERS_DATABASE_URL": "postgresql://u:p@db/orders"}}},
        "'ORDERS_DATABASE_URL'",
    ),
    ({"notify": {"config": {"NOTIFY_DRAIN_SECONDS": 30}}}, "'NOTIFY_DRAIN_SECONDS'"),
    ({"notify": {"config": {"GATEWAY_LOG_LEVEL": "DEBUG"}}}, "'GATEWAY_LOG_LEVEL'"),
    ({"rabbitmq": {"vhost": 'a"b'}}, "at '/rabbitmq/vhost'"),
]


@pytest.mark.parametrize(("overrides", "message"), REFUSED, ids=[m for _, m in REFUSED])
def test_schema_refuses_with_a_message_naming_the_key(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm_python.HelmValuesError) as refused:
        chart.render(overrides)
    assert message in str(refused.value)


def test_lint_reports_a_typo_as_an_error() -> None:
    findings = chart.lint({"gatway": {}})
    assert any("'gatway' not allowed" in finding for finding in findings), findings


@pytest.mark.parametrize("case", CASES)
def test_every_shipped_values_file_passes_the_schema(case: str) -> None:
    with helm_python.Chart.load(chart.CHART_DIR) as loaded:
        loaded.validate_schema(values(case))  # raises HelmValuesError naming the key
        merged = loaded.merge_values(values(case))
    assert merged["autoscaling"]["engine"] in ("keda", "hpa", "none")


def test_free_settings_pass_through_to_the_configmap() -> None:
    objs = chart.render({"gateway": {"config": {"GATEWAY_RATE_LIMIT_PER_SECOND": 250}}})
    configmap = chart.find(objs, "ConfigMap", "ordermesh-gateway")[0]
    assert configmap["data"]["GATEWAY_RATE_LIMIT_PER_SECOND"] == "250"
