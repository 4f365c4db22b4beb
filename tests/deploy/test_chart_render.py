"""The chart lints and renders the objects every other part relies on (docs/kubernetes.md)."""

from __future__ import annotations

import helm_python
import pytest
from ordermesh import chart

from tests.deploy.cases import CASES, KUBE_VERSIONS, Manifest, objects, one, pod_spec, values

SERVICES = ("gateway", "orders", "notify")
PER_SERVICE_KINDS = (
    "Deployment",
    "Service",
    "ServiceAccount",
    "ConfigMap",
    "PodDisruptionBudget",
    "NetworkPolicy",
)


def _config(objs: list[Manifest], service: str) -> dict[str, str]:
    data: dict[str, str] = one(objs, "ConfigMap", f"ordermesh-{service}")["data"]
    return data


@pytest.mark.parametrize("case", CASES)
def test_chart_lints_strictly(case: str) -> None:
    assert chart.lint(values(case), kube_version=f"v{KUBE_VERSIONS[0]}.0") == []


def test_every_service_has_its_named_objects(chart_objects: list[Manifest]) -> None:
    names = {(obj["kind"], obj["metadata"]["name"]) for obj in chart_objects}
    missing = [
        (kind, f"ordermesh-{service}")
        for service in SERVICES
        for kind in PER_SERVICE_KINDS
        if (kind, f"ordermesh-{service}") not in names
    ]
    assert missing == []
    assert all(obj["metadata"].get("namespace") == chart.NAMESPACE for obj in chart_objects)


def test_images_ports_and_commands_match_the_contract(chart_objects: list[Manifest]) -> None:
    seen = {}
    for service in SERVICES:
        spec = pod_spec(one(chart_objects, "Deployment", f"ordermesh-{service}"))
        main = spec["containers"][0]
        ports = {port["name"]: port["containerPort"] for port in main["ports"]}
        seen[service] = (main["image"].split(":")[0], main["command"], main["args"], ports)
        if service != "gateway":
            init = spec["initContainers"][0]
            assert (init["command"], init["args"], init["image"]) == (
                [service],
                ["migrate"],
                main["image"],
            )
    assert seen == {
        "gateway": ("ordermesh/gateway", ["gateway"], ["serve"], {"http": 8080}),
        "orders": ("ordermesh/orders", ["orders"], ["serve"], {"grpc": 50051, "http-ops": 8081}),
        "notify": ("ordermesh/notify", ["notify"], ["serve"], {"http": 8082}),
    }


def test_default_image_tag_is_the_app_version() -> None:
    spec = pod_spec(one(objects("default"), "Deployment", "ordermesh-orders"))
    assert spec["containers"][0]["image"] == "ordermesh/orders:0.1.0"
    digest = "sha256:" + "ab" * 32
    pinned = chart.render({"orders": {"image": {"digest": digest}}})
    image = pod_spec(one(pinned, "Deployment", "ordermesh-orders"))["containers"][0]["image"]
    assert image == f"ordermesh/orders@{digest}"


def test_orders_probes_are_native_grpc() -> None:
    main = pod_spec(one(objects("default"), "Deployment", "ordermesh-orders"))["containers"][0]
    assert main["readinessProbe"]["grpc"] == {
        "port": 50051,
        "service": "ordermesh.orders.v1.OrdersService",
    }
    assert main["startupProbe"]["grpc"] == {"port": 50051, "service": ""}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-ops"}


def test_services_get_their_settings_from_the_configmap_and_secret() -> None:
    objs = objects("default")
    gateway, orders, notify = (_config(objs, s) for s in SERVICES)
    assert gateway["GATEWAY_ORDERS_TARGET"] == "ordermesh-orders:50051"
    assert gateway["GATEWAY_NOTIFY_URL"] == "http://ordermesh-notify:8082"
    assert "ordermesh-gateway.ordermesh.svc" in gateway["GATEWAY_ALLOWED_HOSTS"].split(",")
    assert (orders["ORDERS_MIGRATE_ON_START"], notify["NOTIFY_MIGRATE_ON_START"]) == (
        "false",
        "false",
    )
    assert notify["NOTIFY_QUEUE"] == "notify.order-events"
    for data, prefix in ((gateway, "GATEWAY"), (orders, "ORDERS"), (notify, "NOTIFY")):
        assert data[f"{prefix}_ENVIRONMENT"] == "production"
        assert data[f"{prefix}_DRAIN_SECONDS"] == "10"
        assert (
            data["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.ordermesh-deps.svc:4318"
        )
        assert data["OTEL_TRACES_SAMPLER_ARG"] == "0.1"
    env_from = pod_spec(one(objs, "Deployment", "ordermesh-notify"))["containers"][0]["envFrom"]
    assert env_from == [
        {"configMapRef": {"name": "ordermesh-notify"}},
        {"secretRef": {"name": "ordermesh-notify", "optional": False}},
    ]


def test_dev_values_serve_port_forwards_and_tracing_can_be_off() -> None:
    dev = _config(objects("dev"), "gateway")
    assert {"localhost", "127.0.0.1"} <= set(dev["GATEWAY_ALLOWED_HOSTS"].split(","))
    assert dev["GATEWAY_ENVIRONMENT"] == "development"
    off = _config(chart.render({"otel": {"enabled": False}}), "orders")
    assert off["OTEL_SDK_DISABLED"] == "true"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in off


def test_production_uses_its_existing_secrets_and_ingress_host() -> None:
    objs = objects("production")
    env_from = pod_spec(one(objs, "Deployment", "ordermesh-orders"))["containers"][0]["envFrom"]
    assert env_from[1]["secretRef"]["name"] == "ordermesh-orders-prod"
    hosts = _config(objs, "gateway")["GATEWAY_ALLOWED_HOSTS"].split(",")
    assert "api.ordermesh.example.com" in hosts
    ingress = one(objs, "Ingress", "ordermesh-gateway")
    assert ingress["spec"]["tls"][0]["secretName"] == "ordermesh-api-tls"


@pytest.mark.parametrize("service", SERVICES)
def test_grace_period_is_computed_from_the_drain_and_prestop(service: str) -> None:
    overrides = {service: {"drainSeconds": 17, "preStopSleepSeconds": 3}}
    objs = chart.render(overrides)
    spec = pod_spec(one(objs, "Deployment", f"ordermesh-{service}"))
    assert spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "3"]
    assert _config(objs, service)[f"{service.upper()}_DRAIN_SECONDS"] == "17"
    assert spec["terminationGracePeriodSeconds"] == 3 + 17 + 10  # + pod.shutdownMarginSeconds


def test_notify_drain_must_cover_the_webhook_timeout() -> None:
    with pytest.raises(helm_python.HelmError, match="NOTIFY_WEBHOOK_TIMEOUT_SECONDS"):
        chart.render(
            {"notify": {"drainSeconds": 8, "config": {"NOTIFY_WEBHOOK_TIMEOUT_SECONDS": 9}}}
        )


def test_network_policies_can_be_left_to_the_cluster() -> None:
    assert len(chart.find(objects("default"), "NetworkPolicy")) == 4  # deny + 3 services
    assert chart.find(chart.render({"networkPolicy": {"enabled": False}}), "NetworkPolicy") == []
