"""The autoscalers: KEDA by default, HPA v2 on prometheus-adapter as the alternative,
both on the same PromQL (docs/kubernetes.md, "Autoscaling signals")."""

from __future__ import annotations

from typing import Any

import pytest
from ordermesh import chart

from tests.deploy.cases import Manifest, objects, one

GATEWAY_QUERY = (
    "sum(rate(ordermesh_http_server_request_duration_seconds_count"
    '{{job="gateway",namespace="{namespace}"}}[{window}]))'
)
NOTIFY_QUERY = 'sum(rabbitmq_detailed_queue_messages{{queue="{queue}",vhost="{vhost}"}})'


def _trigger(objs: list[Manifest], service: str) -> dict[str, Any]:
    triggers: list[dict[str, Any]] = one(objs, "ScaledObject", f"ordermesh-{service}")["spec"][
        "triggers"
    ]
    assert len(triggers) == 1
    return triggers[0]


def test_keda_queries_are_the_contract_in_any_namespace_and_vhost() -> None:
    # What tests/test_autoscaling_signals.py renders: namespace local, its own vhost.
    objs = chart.render({"rabbitmq": {"vhost": "om-test"}}, namespace="local")
    gateway, notify = _trigger(objs, "gateway"), _trigger(objs, "notify")
    assert gateway["metadata"]["query"] == GATEWAY_QUERY.format(namespace="local", window="1m")
    assert notify["metadata"]["query"] == NOTIFY_QUERY.format(
        queue="notify.order-events", vhost="om-test"
    )
    for trigger, threshold in ((gateway, "400"), (notify, "300")):
        assert (trigger["type"], trigger["metricType"]) == ("prometheus", "AverageValue")
        assert trigger["metadata"]["threshold"] == threshold
        assert (
            trigger["metadata"]["serverAddress"] == "http://prometheus-operated.monitoring.svc:9090"
        )


def test_scaled_objects_bound_replicas_and_behave_explicitly() -> None:
    objs = objects("default")
    gateway = one(objs, "ScaledObject", "ordermesh-gateway")["spec"]
    notify = one(objs, "ScaledObject", "ordermesh-notify")["spec"]
    assert (gateway["minReplicaCount"], gateway["maxReplicaCount"]) == (2, 10)
    assert (notify["minReplicaCount"], notify["maxReplicaCount"]) == (1, 10)
    for spec in (gateway, notify):
        assert spec["scaleTargetRef"]["name"] in ("ordermesh-gateway", "ordermesh-notify")
        assert spec["fallback"]["replicas"] >= 1
        behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    # notify gives up replicas more slowly than the gateway: one pod per two minutes.
    notify_down = notify["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert notify_down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 120}]


def test_dev_scales_in_within_minutes_on_modest_load() -> None:
    objs = objects("dev")
    spec = one(objs, "ScaledObject", "ordermesh-gateway")["spec"]
    down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] <= 60
    assert float(spec["triggers"][0]["metadata"]["threshold"]) < 400
    assert spec["minReplicaCount"] == 1


def test_hpa_mode_uses_external_metrics_with_the_same_queries() -> None:
    objs = objects("hpa")
    assert chart.find(objs, "ScaledObject") == []
    keda = objects("default")
    for service, metric in (
        ("gateway", "ordermesh_gateway_requests_per_second"),
        ("notify", "ordermesh_notify_queue_backlog"),
    ):
        hpa = one(objs, "HorizontalPodAutoscaler", f"ordermesh-{service}")
        external = hpa["spec"]["metrics"][0]["external"]
        assert external["metric"]["name"] == metric
        assert external["target"]["type"] == "AverageValue"
        query = hpa["metadata"]["annotations"]["autoscaling.ordermesh.dev/query"]
        assert query == _trigger(keda, service)["metadata"]["query"]
        keda_behavior = one(keda, "ScaledObject", f"ordermesh-{service}")["spec"]["advanced"][
            "horizontalPodAutoscalerConfig"
        ]["behavior"]
        assert hpa["spec"]["behavior"] == keda_behavior
    cpu = one(objs, "HorizontalPodAutoscaler", "ordermesh-orders")["spec"]["metrics"][0]
    assert cpu["resource"]["name"] == "cpu"


@pytest.mark.parametrize(
    ("case", "fixed"),
    [
        ("default", {"orders": 2}),
        ("hpa", {}),
        ("no-autoscaling", {"gateway": 3, "orders": 2, "notify": 2}),
    ],
)
def test_autoscaled_deployments_leave_replicas_to_the_autoscaler(
    case: str, fixed: dict[str, int]
) -> None:
    objs = objects(case)
    replicas = {
        obj["metadata"]["name"].removeprefix("ordermesh-"): obj["spec"]["replicas"]
        for obj in objs
        if obj["kind"] == "Deployment" and "replicas" in obj["spec"]
    }
    assert replicas == fixed
    if case == "no-autoscaling":
        assert [o for o in objs if o["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")] == []
