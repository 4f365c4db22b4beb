"""Scraping, rules, dashboards and NOTES.txt: what lets a user see the release work."""

from __future__ import annotations

import yaml
from ordermesh import chart
from ordermesh.dashboards import DASHBOARD_DIR, RULES_DIR

from tests.deploy.cases import objects, one

METRICS_PORTS = {
    "gateway": ("http", "8080"),
    "orders": ("http-ops", "8081"),
    "notify": ("http", "8082"),
}


def test_dashboards_are_configmaps_for_the_grafana_sidecar() -> None:
    objs = objects("default")
    sources = sorted(DASHBOARD_DIR.glob("*.json"))
    assert sources
    for source in sources:
        configmap = one(objs, "ConfigMap", f"ordermesh-dashboard-{source.stem}")
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert configmap["data"] == {source.name: source.read_text()}
    relabelled = chart.render({"dashboards": {"label": "dashboards", "labelValue": "ordermesh"}})
    labels = chart.find(relabelled, "ConfigMap", "ordermesh-dashboard-overview")[0]["metadata"]
    assert labels["labels"]["dashboards"] == "ordermesh"
    off = chart.render({"dashboards": {"enabled": False}})
    assert [o for o in off if o["metadata"]["name"].startswith("ordermesh-dashboard-")] == []


def test_prometheus_rules_are_the_repository_rule_files() -> None:
    objs = objects("dev")
    sources = sorted(RULES_DIR.glob("*.yml"))
    assert sources
    for source in sources:
        rule = one(objs, "PrometheusRule", f"ordermesh-{source.stem}")
        assert rule["spec"] == yaml.safe_load(source.read_text())
    assert chart.find(objects("default"), "PrometheusRule") == []


def test_pods_carry_scrape_annotations_on_their_metrics_port() -> None:
    objs = objects("default")
    for service, (_, port) in METRICS_PORTS.items():
        template = one(objs, "Deployment", f"ordermesh-{service}")["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert (annotations["prometheus.io/scrape"], annotations["prometheus.io/port"]) == (
            "true",
            port,
        )
        assert annotations["prometheus.io/path"] == "/metrics"


def test_monitors_label_jobs_with_the_service_name() -> None:
    for case, kind, endpoints in (
        ("dev", "ServiceMonitor", "endpoints"),
        ("hpa", "PodMonitor", "podMetricsEndpoints"),
    ):
        objs = objects(case)
        for service, (port_name, _) in METRICS_PORTS.items():
            spec = one(objs, kind, f"ordermesh-{service}")["spec"]
            assert spec["jobLabel"] == "app.kubernetes.io/component"
            assert spec["selector"]["matchLabels"]["app.kubernetes.io/component"] == service
            assert spec[endpoints][0]["port"] == port_name
    assert chart.find(objects("default"), "ServiceMonitor") == []
    assert chart.find(objects("production"), "PodMonitor") == []


def test_notes_tell_how_to_reach_everything() -> None:
    notes = chart.notes({})
    for expected in (
        "kubectl -n ordermesh port-forward svc/ordermesh-gateway 8080:8080",
        "get secret ordermesh-gateway -o jsonpath='{.data.GATEWAY_JWT_SECRET}'",
        "ordermesh token --sub alice",
        "port-forward svc/kube-prometheus-stack-grafana 3000:80",
        "port-forward svc/prometheus-operated 9090:9090",
        "kubectl -n ordermesh-deps port-forward svc/jaeger 16686:16686",
        "Autoscaling: KEDA ScaledObjects",
    ):
        assert expected in notes, expected
    assert "Autoscaling: HorizontalPodAutoscalers" in chart.notes(
        {"autoscaling": {"engine": "hpa"}}
    )
    assert "Autoscaling: none" in chart.notes({"autoscaling": {"engine": "none"}})
