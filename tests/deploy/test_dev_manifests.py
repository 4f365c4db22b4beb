"""k8s/kind, k8s/deps and k8s/dev: valid Kubernetes objects, and in agreement with the
chart, the local stack and each other (names, labels, ports, Secrets, PromQL).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]  # ships no py.typed
import pytest
import yaml
from ordermesh import chart
from ordermesh.paths import REPO_ROOT

from tests.deploy import crds
from tests.deploy.cases import KUBE_VERSIONS

Manifest = dict[str, Any]
K8S = REPO_ROOT / "k8s"
KIND_CONFIG = K8S / "kind" / "cluster.yaml"
MANIFEST_FILES = sorted([*(K8S / "deps").glob("*.yaml"), *(K8S / "dev").rglob("*.yaml")], key=str)
VALUES_FILES = sorted([*(K8S / "deps" / "values").glob("*.yaml"), K8S / "kind" / "values-e2e.yaml"])
DEPS_NAMESPACE = "ordermesh-deps"
NAMESPACE = "ordermesh"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
# Kinds with a pod template whose containers must carry resources and probes.
LONG_RUNNING = ("Deployment", "StatefulSet")


def objects(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def all_objects() -> list[Manifest]:
    return [obj for path in MANIFEST_FILES for obj in objects(path)]


def deps_objects() -> list[Manifest]:
    return [obj for path in sorted((K8S / "deps").glob("*.yaml")) for obj in objects(path)]


def one(objs: list[Manifest], kind: str, name: str) -> Manifest:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_spec(obj: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def kind_node_minor() -> str:
    image = yaml.safe_load(KIND_CONFIG.read_text())["nodes"][0]["image"]
    match = re.match(r"kindest/node:v(\d+\.\d+)\.\d+@", image)
    assert match is not None, image
    return match[1]


def dev_values(**overrides: Any) -> Manifest:
    """The chart's defaults, then dev.yaml and the kind values, as a kind install has them."""
    files = [chart.CHART_DIR / "values.yaml", chart.EXAMPLES_DIR / "dev.yaml"]
    return chart.load_values([*files, K8S / "kind" / "values-e2e.yaml"], overrides)


def chart_objects(**overrides: Any) -> list[Manifest]:
    return chart.render(dev_values(**overrides))


def service_ports(objs: list[Manifest], host: str) -> set[int]:
    """Ports of the Service `name.namespace.svc` names, among `objs`."""
    name, namespace, *_ = host.split(".")
    service = one([o for o in objs if o["metadata"].get("namespace") == namespace], "Service", name)
    return {port["port"] for port in service["spec"]["ports"]}


def schema_errors(obj: Manifest, version: str) -> list[str]:
    if crds.is_custom(obj):
        return list(crds.errors(obj))
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{obj['kind']} {obj['metadata']['name']}: {error.message}"]
    return []


# --- schemas -------------------------------------------------------------------------


# The lowest minor the chart admits and the kind node's.
@pytest.mark.parametrize("version", sorted({KUBE_VERSIONS[0], kind_node_minor()}))
@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda p: str(p.relative_to(K8S)))
def test_every_object_validates_strictly(path: Path, version: str) -> None:
    found = objects(path)
    assert found, f"{path} holds no object"
    errors = [error for obj in found for error in schema_errors(obj, version)]
    assert errors == []


def test_a_wrong_field_is_caught_by_either_schema() -> None:
    statefulset = one(deps_objects(), "StatefulSet", "postgresql")
    statefulset["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    statefulset["spec"]["replica"] = 1
    assert schema_errors(statefulset, kind_node_minor())
    monitor = one(deps_objects(), "ServiceMonitor", "rabbitmq")
    monitor["spec"]["endpoints"][0]["metricPath"] = "/metrics"  # a typo of `path`
    assert any("metricPath" in error for error in schema_errors(monitor, kind_node_minor()))


def test_the_kind_config_is_a_pinned_single_cluster_named_ordermesh() -> None:
    config = yaml.safe_load(KIND_CONFIG.read_text())
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["name"] == "ordermesh"
    assert [node["role"] for node in config["nodes"]] == ["control-plane"]
    image = config["nodes"][0]["image"]
    # Short name (no registry host), a version tag and the digest of that build.
    assert re.fullmatch(r"kindest/node:v1\.\d+\.\d+@sha256:[0-9a-f]{64}", image), image
    assert set(config) <= {"kind", "apiVersion", "name", "nodes", "networking"}


@pytest.mark.parametrize("path", VALUES_FILES, ids=lambda p: p.name)
def test_values_files_are_yaml_mappings(path: Path) -> None:
    assert isinstance(yaml.safe_load(path.read_text()), dict)


# --- the dependencies ----------------------------------------------------------------


def test_dependencies_live_in_their_namespace_with_their_name_label() -> None:
    names = {"postgresql", "rabbitmq", "otel-collector", "jaeger"}
    found = set()
    for obj in deps_objects():
        if obj["kind"] == "Namespace":
            continue
        assert obj["metadata"]["namespace"] == DEPS_NAMESPACE, obj["metadata"]["name"]
        name = obj["metadata"]["labels"]["app.kubernetes.io/name"]
        assert name in names
        if obj["kind"] in WORKLOAD_KINDS:
            assert obj["metadata"]["name"] == name
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert labels["app.kubernetes.io/name"] == name
            found.add(name)
    assert found == names


@pytest.mark.parametrize(
    "workload",
    [o for o in all_objects() if o["kind"] in WORKLOAD_KINDS],
    ids=lambda o: f"{o['kind']}/{o['metadata']['name']}",
)
def test_every_container_has_resources_probes_and_a_pinned_short_image(workload: Manifest) -> None:
    spec = pod_spec(workload)
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in spec["containers"]:
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"])
        assert {"cpu", "memory"} <= set(resources["limits"])
        if workload["kind"] in LONG_RUNNING:
            assert "readinessProbe" in container
            assert "livenessProbe" in container
        image = container["image"]
        if "/" in image:
            first = image.split("/")[0]
            assert "." not in first, f"{image}: names a registry host"
            assert ":" not in first, f"{image}: names a registry host"
        tag = image.rsplit(":", 1)[-1]
        # Upstream images by version; ours by the tag the kind run builds.
        assert re.search(r"\d", tag) or image.startswith("ordermesh/"), image
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        probes = [container.get(p, {}) for p in ("startupProbe", "readinessProbe", "livenessProbe")]
        ports = {port["name"] for port in container.get("ports", [])}
        for probe in probes:
            named = (probe.get("httpGet") or probe.get("tcpSocket") or {}).get("port")
            assert not isinstance(named, str) or named in ports, f"probe port {named}"


def test_the_charts_dev_network_peers_are_the_dependencies_pods_and_ports() -> None:
    """networkPolicy.postgresql/rabbitmq/otelCollector of the dev values select these pods."""
    deps = deps_objects()
    values = dev_values()["networkPolicy"]
    for key in ("postgresql", "rabbitmq", "otelCollector"):
        (peer,) = values[key]["peers"]
        namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        wanted = peer["podSelector"]["matchLabels"]
        matching = [
            o
            for o in deps
            if o["kind"] in WORKLOAD_KINDS
            and o["metadata"]["namespace"] == namespace
            and wanted.items() <= o["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matching) == 1, key
        ports = values[key].get("ports") or [values[key]["port"]]
        exposed = {
            p["containerPort"] for c in pod_spec(matching[0])["containers"] for p in c["ports"]
        }
        assert set(ports) <= exposed, (key, ports, exposed)


def test_postgresql_creates_the_two_databases_with_their_roles() -> None:
    init = one(deps_objects(), "ConfigMap", "postgresql-init")
    (sql,) = init["data"].values()
    roles = dict(re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD '([^']+)';", sql))
    databases = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+);", sql))
    assert databases == {"orders": "orders", "notify": "notify"}
    assert set(roles) == {"orders", "notify"}
    statefulset = one(deps_objects(), "StatefulSet", "postgresql")
    mounts = {
        m["mountPath"]: m["name"] for m in pod_spec(statefulset)["containers"][0]["volumeMounts"]
    }
    volumes = {v["name"]: v for v in pod_spec(statefulset)["volumes"]}
    assert volumes[mounts["/docker-entrypoint-initdb.d"]]["configMap"]["name"] == "postgresql-init"


def test_rabbitmq_enables_its_prometheus_and_management_plugins() -> None:
    config = one(deps_objects(), "ConfigMap", "rabbitmq-config")["data"]
    plugins = re.fullmatch(r"\[([a-z_,]+)\]\.\n", config["enabled_plugins"])
    assert plugins is not None
    assert set(plugins[1].split(",")) == {"rabbitmq_management", "rabbitmq_prometheus"}
    assert service_ports(deps_objects(), "rabbitmq.ordermesh-deps.svc") == {5672, 15672, 15692}


def test_the_rabbitmq_servicemonitor_scrapes_like_the_local_stack() -> None:
    """Both endpoints and the same detailed families as observability's prometheus.yml."""
    local = yaml.safe_load(
        (REPO_ROOT / "observability" / "prometheus" / "prometheus.yml").read_text()
    )
    detailed = next(
        job for job in local["scrape_configs"] if job["job_name"] == "rabbitmq-detailed"
    )
    monitor = one(deps_objects(), "ServiceMonitor", "rabbitmq")
    service = one(deps_objects(), "Service", "rabbitmq")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [DEPS_NAMESPACE]
    # The job label is the Service's name, as the local stack's job="rabbitmq".
    assert service["metadata"]["name"] == "rabbitmq"
    assert "jobLabel" not in monitor["spec"]
    endpoints = {e["path"]: e for e in monitor["spec"]["endpoints"]}
    assert set(endpoints) == {"/metrics", detailed["metrics_path"]}
    assert endpoints[detailed["metrics_path"]]["params"] == detailed["params"]
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in endpoints.values():
        assert endpoint["port"] in port_names
        assert {"sourceLabels": ["__metrics_path__"], "targetLabel": "metrics_path"} in endpoint[
            "relabelings"
        ]
    (drop,) = endpoints[detailed["metrics_path"]]["metricRelabelings"]
    (local_drop,) = detailed["metric_relabel_configs"]
    assert drop["regex"] == local_drop["regex"]
    assert drop["action"] == "drop"


def test_the_collector_takes_otlp_where_the_chart_sends_it_and_exports_to_jaeger() -> None:
    deps = deps_objects()
    config = yaml.safe_load(one(deps, "ConfigMap", "otel-collector")["data"]["config.yaml"])
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    endpoint = urlsplit(dev_values()["otel"]["endpoint"])
    assert endpoint.port in service_ports(deps, str(endpoint.hostname))
    assert str(endpoint.hostname).startswith("otel-collector.")
    (exporter,) = config["service"]["pipelines"]["traces"]["exporters"]
    host, port = config["exporters"][exporter]["endpoint"].rsplit(":", 1)
    assert host == "jaeger.ordermesh-deps.svc"
    assert int(port) in service_ports(deps, host)
    extension = config["extensions"]["health_check"]["endpoint"]
    collector = pod_spec(one(deps, "Deployment", "otel-collector"))["containers"][0]
    health = next(p for p in collector["ports"] if p["name"] == "health")
    assert extension.endswith(f":{health['containerPort']}")


# --- the dev Secrets ---------------------------------------------------------------


def documented_secret_keys() -> dict[str, tuple[set[str], set[str]]]:
    """Service -> (required keys, optional keys), from docs/kubernetes.md's table."""
    docs = (REPO_ROOT / "docs" / "kubernetes.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith("| secrets"))
    found: dict[str, tuple[set[str], set[str]]] = {}
    for service, keys in re.findall(r"`<release>-(\w+)` \(([^)]*)\)", row):
        required = set(re.findall(r"(?<!optional )`([A-Z_]+)`", keys))
        optional = set(re.findall(r"optional `([A-Z_]+)`", keys))
        found[service] = (required, optional)
    return found


def dev_secrets() -> dict[str, dict[str, str]]:
    secrets = objects(K8S / "dev" / "secrets.yaml")
    return {s["metadata"]["name"]: s["stringData"] for s in secrets if s["kind"] == "Secret"}


def test_the_dev_secrets_are_the_ones_the_chart_loads_with_the_documented_keys() -> None:
    documented = documented_secret_keys()
    assert set(documented) == {"gateway", "orders", "notify"}
    secrets = dev_secrets()
    for deployment in chart.find(chart_objects(), "Deployment"):
        service = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        refs = {
            source["secretRef"]["name"]
            for container in pod_spec(deployment)["containers"]
            for source in container.get("envFrom", [])
            if "secretRef" in source
        }
        assert refs == {f"ordermesh-{service}"}
        keys = set(secrets[f"ordermesh-{service}"])
        required, optional = documented[service]
        assert required <= keys, f"{service}: missing {required - keys}"
        assert keys <= required | optional, f"{service}: undocumented {keys - required - optional}"
    for secret in objects(K8S / "dev" / "secrets.yaml"):
        assert secret["metadata"]["namespace"] == NAMESPACE
    assert len(secrets["ordermesh-gateway"]["GATEWAY_JWT_SECRET"].encode()) >= 32


def test_the_dev_secrets_urls_reach_the_dependencies_with_their_credentials() -> None:
    deps = deps_objects()
    sql = one(deps, "ConfigMap", "postgresql-init")["data"]["10-ordermesh-databases.sql"]
    roles = dict(re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD '([^']+)';", sql))
    rabbit = one(deps, "Secret", "rabbitmq")["stringData"]
    vhost = dev_values()["rabbitmq"]["vhost"]
    for name, data in dev_secrets().items():
        for key, value in data.items():
            if key.endswith("_DATABASE_URL"):
                url = urlsplit(value)
                assert url.scheme == "postgresql"
                assert roles[str(url.username)] == url.password, key
                assert url.path == f"/{url.username}", f"{key}: its own database"
            elif key.endswith("_AMQP_URL"):
                url = urlsplit(value)
                assert url.scheme == "amqp"
                assert url.username == rabbit["RABBITMQ_DEFAULT_USER"], key
                assert url.password == rabbit["RABBITMQ_DEFAULT_PASS"], key
                assert (url.path[1:] or "/") == vhost, f"{key}: vhost {vhost}"
            else:
                continue
            assert str(url.hostname).endswith(f".{DEPS_NAMESPACE}.svc"), f"{name} {key}"
            assert url.port in service_ports(deps, str(url.hostname)), f"{name} {key}"


# --- upstream charts -----------------------------------------------------------------


def charts_env() -> dict[str, str]:
    lines = (K8S / "deps" / "charts.env").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {pair[0]: pair[1] for pair in pairs}


def test_every_upstream_chart_is_pinned_in_one_place_from_a_named_repository() -> None:
    env = charts_env()
    repos = env.pop("HELM_REPOS").split(",")
    charts = {
        key.removesuffix("_CHART"): value for key, value in env.items() if key.endswith("_CHART")
    }
    assert set(charts) == {"KUBE_PROMETHEUS_STACK", "KEDA", "PROMETHEUS_ADAPTER"}
    for prefix, reference in charts.items():
        repo, _, name = reference.partition("/")
        assert repo in repos, reference
        assert re.fullmatch(r"\d+\.\d+\.\d+", env[f"{prefix}_VERSION"]), prefix
        assert (K8S / "deps" / "values" / f"{name}.yaml").is_file(), name
    assert set(repos) == {ref.partition("/")[0] for ref in charts.values()}


def test_kube_prometheus_stack_selects_every_monitor_and_the_charts_dashboards() -> None:
    values = yaml.safe_load((K8S / "deps" / "values" / "kube-prometheus-stack.yaml").read_text())
    spec = values["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "probe", "scrapeConfig", "rule"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False, kind
    sidecar = values["grafana"]["sidecar"]["dashboards"]
    chart_values = yaml.safe_load((chart.CHART_DIR / "values.yaml").read_text())
    assert sidecar["enabled"] is True
    assert sidecar["label"] == chart_values["dashboards"]["label"]
    assert sidecar["labelValue"] == chart_values["dashboards"]["labelValue"]
    assert sidecar["searchNamespace"] == "ALL"
    # The Services the chart's NOTES and autoscalers name.
    notes = chart_values["notes"]
    assert f"{values['fullnameOverride']}-grafana" == notes["grafanaService"]
    server = urlsplit(chart_values["autoscaling"]["prometheus"]["serverAddress"])
    assert server.hostname == f"{notes['prometheusService']}.{notes['monitoringNamespace']}.svc"
    adapter = yaml.safe_load((K8S / "deps" / "values" / "prometheus-adapter.yaml").read_text())
    assert (
        f"{adapter['prometheus']['url']}:{adapter['prometheus']['port']}"
        == (chart_values["autoscaling"]["prometheus"]["serverAddress"])
    )


def test_prometheus_adapter_serves_exactly_the_charts_hpa_queries() -> None:
    adapter = yaml.safe_load((K8S / "deps" / "values" / "prometheus-adapter.yaml").read_text())
    rules = {rule["name"]["as"]: rule for rule in adapter["rules"]["external"]}
    hpas = chart.find(chart_objects(autoscaling={"engine": "hpa"}), "HorizontalPodAutoscaler")
    expected = {}
    for hpa in hpas:
        for metric in hpa["spec"]["metrics"]:
            if metric["type"] == "External":
                name = metric["external"]["metric"]["name"]
                expected[name] = hpa["metadata"]["annotations"]["autoscaling.ordermesh.dev/query"]
    assert set(expected) == {
        "ordermesh_gateway_requests_per_second",
        "ordermesh_notify_queue_backlog",
    }
    assert {name: rule["metricsQuery"] for name, rule in rules.items()} == expected
    # And KEDA's triggers read the same numbers.
    keda = {
        o["metadata"]["name"]: o["spec"]["triggers"][0]["metadata"]["query"]
        for o in chart.find(chart_objects(), "ScaledObject")
    }
    assert set(keda.values()) == set(expected.values())
    for rule in rules.values():
        series = re.match(r"(\w+)\{", rule["seriesQuery"])
        assert series is not None
        assert series[1] in rule["metricsQuery"]
        assert re.fullmatch(rule["name"]["matches"], series[1])


# --- the repository rule -------------------------------------------------------------

MINE = [
    *MANIFEST_FILES,
    *VALUES_FILES,
    KIND_CONFIG,
    K8S / "deps" / "charts.env",
    REPO_ROOT / "Tiltfile",
    REPO_ROOT / ".dockerignore",
    REPO_ROOT / ".hadolint.yaml",
    *(REPO_ROOT / "services").glob("*/Dockerfile"),
    *(REPO_ROOT / ".github" / "workflows").glob("*.yml"),
    *(REPO_ROOT / "scripts").glob("kind*"),
    REPO_ROOT / "scripts" / "e2e-kind.sh",
    REPO_ROOT / "scripts" / "check-helm-repos.sh",
    REPO_ROOT / "docs" / "local-cluster.md",
]
ALLOWED_HOSTS = re.compile(r"^(127\.0\.0\.1|localhost|[a-z0-9-]+\.[a-z0-9-]+\.svc)$")


@pytest.mark.parametrize("path", MINE, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_file_names_a_registry_address(path: Path) -> None:
    text = path.read_text()
    urls = re.findall(r"\b[a-z][a-z0-9+.-]*://[^\s'\"`)]+", text)
    # ext:// are Tilt extensions, by name.
    hosts = {urlsplit(url).hostname for url in urls if not url.startswith("ext://")}
    assert {host for host in hosts if not ALLOWED_HOSTS.match(str(host))} == set()
    for registry in ("docker.io", "ghcr.io", "quay.io", "gcr.io", "registry.k8s.io", "pypi.org"):
        assert registry not in text, registry
