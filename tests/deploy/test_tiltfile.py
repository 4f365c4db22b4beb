"""The Tiltfile loads with stubbed Tilt built-ins and names only what exists: paths,
images the chart runs, resources and objects Tilt would find, ports containers expose.
"""

from __future__ import annotations

import functools
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from ordermesh import chart
from ordermesh.paths import REPO_ROOT

from tests.deploy import dockerfile_model, tilt_stubs
from tests.deploy.tilt_stubs import AssemblyError, TiltRun

SERVICES = dockerfile_model.SERVICES
GROUPS = {"app", "deps", "observability", "tests"}
KIND_CONFIG = REPO_ROOT / "k8s" / "kind" / "cluster.yaml"
CHARTS_ENV = REPO_ROOT / "k8s" / "deps" / "charts.env"


@functools.cache
def _run() -> TiltRun:
    return tilt_stubs.load()


@pytest.fixture
def run() -> TiltRun:
    return _run()


def charts_env() -> dict[str, str]:
    lines = CHARTS_ENV.read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {pair[0]: pair[1] for pair in pairs}


def containers(workload: dict[str, Any], *, init: bool = True) -> list[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    found: list[dict[str, Any]] = spec["containers"]
    return found + (spec.get("initContainers", []) if init else [])


def path_problems(run: TiltRun, root: Path = REPO_ROOT) -> list[str]:
    """Every file or folder the Tiltfile reads, syncs, watches or builds from exists."""
    problems = [f"{name}: no such path" for name in run.paths if not (root / name).exists()]
    problems += [
        f"{image.ref}: sync source {step.args[0]} is not a folder"
        for image in run.images.values()
        for step in image.steps("sync")
        if not (root / step.args[0]).is_dir()
    ]
    for name, resource in run.local_resources.items():
        words = shlex.split(str(resource.get("cmd", "")))
        problems += [
            f"local_resource {name}: {word} does not exist"
            for word in words
            if word.startswith(("scripts/", "tests/")) and not (root / word).exists()
        ]
    return problems


def image_problems(run: TiltRun) -> list[str]:
    """Images built are the ones the chart's Deployments run, and all of those are built."""
    deployments = [obj for obj in run.objects if obj["kind"] == "Deployment"]
    used = {
        container["image"].split(":")[0].split("@")[0]
        for deployment in deployments
        for container in containers(deployment)
    }
    problems = [f"{ref}: built but no Deployment runs it" for ref in run.images if ref not in used]
    problems += [
        f"{ref}: run by the chart but not built"
        for ref in used
        if ref.startswith("ordermesh/") and ref not in run.images
    ]
    return problems


def resource_problems(run: TiltRun) -> list[str]:
    """resource_deps name resources that exist; labels are the four groups."""
    known = run.resource_names()
    problems = []
    for resource in run.resources.values():
        problems += [
            f"{resource.name}: depends on unknown resource {dep}"
            for dep in resource.resource_deps
            if dep not in known
        ]
        if resource.name != "uncategorized" and set(resource.labels) - GROUPS:
            problems.append(f"{resource.name}: labels {resource.labels} outside {GROUPS}")
    for name, options in [*run.local_resources.items(), *run.helm_resources.items()]:
        problems += [
            f"{name}: depends on unknown resource {dep}"
            for dep in options.get("resource_deps", [])
            if dep not in known
        ]
        if not set(options.get("labels", [])) <= GROUPS or not options.get("labels"):
            problems.append(f"{name}: labels {options.get('labels')} outside {GROUPS}")
    return problems


def port_problems(run: TiltRun) -> list[str]:
    problems = []
    for resource in run.resources.values():
        exposed = {
            port["containerPort"]
            for workload in resource.workloads
            for container in containers(workload, init=False)
            for port in container.get("ports", [])
        }
        problems += [
            f"{resource.name}: forwards to {forward.container_port}, exposed: {sorted(exposed)}"
            for forward in resource.port_forwards
            if forward.container_port not in exposed
        ]
    return problems


def all_problems(run: TiltRun) -> list[str]:
    return path_problems(run) + image_problems(run) + resource_problems(run) + port_problems(run)


def variant(old: str, new: str) -> str:
    text = tilt_stubs.TILTFILE.read_text()
    assert old in text, f"the Tiltfile no longer contains {old!r}"
    return text.replace(old, new, 1)


# --- tests -----------------------------------------------------------------------------


def test_the_tiltfile_is_starlark() -> None:
    assert tilt_stubs.starlark_problems(tilt_stubs.TILTFILE.read_text()) == []


def test_python_that_starlark_refuses_is_caught() -> None:
    source = (
        "import os\nname = f'{1}'\nfor x in []:\n    pass\n"
        "def f():\n    while True:\n        pass\n    return 1 < 2 < 3\n"
    )
    problems = "\n".join(tilt_stubs.starlark_problems(source))
    for construct in ("import", "f-string", "top-level For", "while", "chained comparison"):
        assert construct in problems, problems


def test_it_loads_names_only_what_exists_and_leaves_nothing_uncategorized(run: TiltRun) -> None:
    assert all_problems(run) == []
    assert "uncategorized" not in run.resources, [
        tilt_stubs.fragment_keys(obj)[1] for obj in run.resources["uncategorized"].objects
    ]
    assert {label for r in run.resources.values() for label in r.labels} | {
        label for o in run.local_resources.values() for label in o["labels"]
    } == GROUPS


def test_only_the_kind_context_is_allowed(run: TiltRun) -> None:
    cluster = yaml.safe_load(KIND_CONFIG.read_text())
    assert run.allowed_contexts == [f"kind-{cluster['name']}"]


def test_the_chart_is_deployed_with_the_dev_values_as_release_ordermesh(run: TiltRun) -> None:
    assert run.helm_renders == [
        {
            "name": "ordermesh",
            "namespace": "ordermesh",
            "values": ["charts/ordermesh/examples/dev.yaml", "k8s/kind/values-e2e.yaml"],
        }
    ]
    workloads = {name for name, r in run.resources.items() if r.workloads}
    assert {f"ordermesh-{service}" for service in SERVICES} <= workloads
    assert {"postgresql", "rabbitmq", "otel-collector", "jaeger"} <= workloads


@pytest.mark.parametrize("service", SERVICES)
def test_each_image_builds_its_dockerfiles_dev_target(run: TiltRun, service: str) -> None:
    image = run.images[f"ordermesh/{service}"]
    dockerfile = dockerfile_model.load(service)
    assert image.context == "."
    assert image.dockerfile == f"services/{service}/Dockerfile"
    assert image.target is not None
    dockerfile.stage(image.target)  # exists
    copied = [copy.words()[0] for copy in dockerfile.stage("build").all("COPY")]
    assert sorted(image.only) == sorted(copied), "Tilt's context must hold what the build copies"


@pytest.mark.parametrize("service", SERVICES)
def test_live_update_syncs_the_sources_into_the_installed_packages(
    run: TiltRun, service: str
) -> None:
    image = run.images[f"ordermesh/{service}"]
    dockerfile = dockerfile_model.load(service)
    venv = dockerfile.stage("build").env()["UV_PROJECT_ENVIRONMENT"]
    base = dockerfile.lineage(dockerfile.final)[-1].base
    python = re.match(r"python:(\d+\.\d+)\.", base)
    assert python is not None
    site_packages = f"{venv}/lib/python{python[1]}/site-packages"
    syncs = {step.args[0]: step.args[1] for step in image.steps("sync")}
    expected = {
        f"services/{service}/src/{service}": f"{site_packages}/{service}",
        "libs/servicekit/src/servicekit": f"{site_packages}/servicekit",
        "libs/contracts/src/contracts": f"{site_packages}/contracts",
    }
    assert syncs == expected
    # Every synced file is in Tilt's context and in the image.
    assert all(any(src.startswith(only) for only in image.only) for src in syncs)
    # A manifest change re-resolves the workspace: a full rebuild, not a sync.
    (fall_back,) = image.steps("fall_back_on")
    manifests = [c.words()[0] for c in dockerfile.stage("build").all("COPY")]
    assert sorted(fall_back.args) == sorted(m for m in manifests if m.endswith("pyproject.toml"))
    assert image.live_update[0].kind == "fall_back_on", "fall_back_on steps come first"
    assert image.live_update[-1].kind == "run", "the restart comes last"


@pytest.mark.parametrize("service", SERVICES)
def test_the_restarted_process_is_the_service_and_can_be_restarted(
    run: TiltRun, service: str
) -> None:
    image = run.images[f"ordermesh/{service}"]
    assert image.entrypoint is not None
    wrapper, watch, *command = image.entrypoint
    assert wrapper == "/tilt-restart-wrapper"
    restart_file = watch.removeprefix("--watch_file=")
    deployment = chart.find(run.objects, "Deployment", f"ordermesh-{service}")[0]
    main = containers(deployment, init=False)[0]
    dockerfile = dockerfile_model.load(service)
    entrypoint, cmd = dockerfile.final.last("ENTRYPOINT"), dockerfile.final.last("CMD")
    assert entrypoint is not None
    assert cmd is not None
    # Tilt replaces the container's command; the chart's args follow it.
    assert command + main["args"] == entrypoint.words() + cmd.words()
    assert image.live_update[-1].args == (f"date > {restart_file}",)
    # The app user may write the restart file: in the venv the dev target hands over,
    # not under a volume mount (which would hide the file the image holds).
    dev = dockerfile.stage(image.target or "")
    (venv_copy,) = dev.all("COPY")
    user = dev.last("USER")
    assert user is not None
    assert venv_copy.flags()["chown"] == user.text
    assert restart_file.startswith(venv_copy.words()[1] + "/")
    mounts = [m["mountPath"] for m in main.get("volumeMounts", [])]
    assert not any(restart_file.startswith(mount + "/") for mount in mounts)
    # live_update writes into the container: the dev loop lifts the read-only root.
    assert main["securityContext"]["readOnlyRootFilesystem"] is False


def test_port_forwards_reach_the_gateway_jaeger_grafana_and_prometheus(run: TiltRun) -> None:
    forwards = {
        name: [(f.local_port, f.container_port) for f in resource.port_forwards]
        for name, resource in run.resources.items()
        if resource.port_forwards
    }
    assert forwards["ordermesh-gateway"] == [(8080, 8080)]
    assert forwards["jaeger"] == [(16686, 16686)]
    # Grafana and Prometheus are Services of kube-prometheus-stack: the names its values
    # give them and the chart's NOTES print.
    notes = yaml.safe_load((chart.CHART_DIR / "values.yaml").read_text())["notes"]
    serve = {
        name: str(run.local_resources[name]["serve_cmd"]) for name in ("grafana", "prometheus")
    }
    assert f"--namespace {notes['monitoringNamespace']}" in serve["grafana"]
    assert f"svc/{notes['grafanaService']} 3000:80" in serve["grafana"]
    assert f"svc/{notes['prometheusService']} 9090:9090" in serve["prometheus"]
    stack_values = yaml.safe_load(
        (REPO_ROOT / "k8s/deps/values/kube-prometheus-stack.yaml").read_text()
    )
    assert notes["grafanaService"] == f"{stack_values['fullnameOverride']}-grafana"


def test_e2e_is_a_manual_resource_running_the_suite_at_the_gateway_forward(run: TiltRun) -> None:
    e2e = run.local_resources["e2e"]
    assert e2e["auto_init"] is False
    assert e2e["trigger_mode"] == "TRIGGER_MODE_MANUAL"
    assert e2e["labels"] == ["tests"]
    words = shlex.split(e2e["cmd"].replace('"$(', " ").replace(')"', " "))
    assert ".venv/bin/pytest" in words
    assert "tests/e2e" in words
    assert "scripts/kind_e2e_env.py" in words
    assert words[words.index("--url") + 1] == "http://127.0.0.1:8080"
    assert {"ordermesh-gateway", "ordermesh-orders", "ordermesh-notify"} <= set(
        e2e["resource_deps"]
    )


def test_dependencies_install_the_pinned_charts_with_their_values(run: TiltRun) -> None:
    env = charts_env()
    expected = {
        "kube-prometheus-stack": ("KUBE_PROMETHEUS_STACK", "monitoring"),
        "keda": ("KEDA", "keda"),
    }
    assert set(run.helm_resources) == set(expected)
    for name, (prefix, namespace) in expected.items():
        options = run.helm_resources[name]
        assert options["chart"] == env[f"{prefix}_CHART"]
        assert options["namespace"] == namespace
        flags = options["flags"]
        assert flags[flags.index("--version") + 1] == env[f"{prefix}_VERSION"]
        assert (REPO_ROOT / flags[flags.index("--values") + 1]).is_file()
        assert "helm-repos" in options["resource_deps"]
    # Custom resources wait for the chart that brings their CRD.
    for name, crd_chart in [
        ("ordermesh-autoscaling", "keda"),
        ("ordermesh-observability", "kube-prometheus-stack"),
        ("deps-monitoring", "kube-prometheus-stack"),
    ]:
        assert crd_chart in run.resources[name].resource_deps


def test_a_tiltfile_naming_a_missing_path_fails_the_check() -> None:
    with pytest.raises(AssemblyError, match=r"nowhere\.yaml: no such file"):
        tilt_stubs.load(variant("'k8s/kind/values-e2e.yaml'", "'k8s/kind/nowhere.yaml'"))
    watched = tilt_stubs.load(variant("deps=['k8s/deps/charts.env'],", "deps=['k8s/nowhere.env'],"))
    assert "k8s/nowhere.env: no such path" in path_problems(watched)


def test_a_tiltfile_syncing_a_missing_folder_fails_the_check() -> None:
    broken = tilt_stubs.load(variant("'libs/%s/src/%s'", "'libs/%s/source/%s'"))
    assert any("is not a folder" in problem for problem in path_problems(broken))


def test_a_tiltfile_configuring_a_missing_resource_fails_to_assemble() -> None:
    source = variant("('ordermesh-gateway', ['app']", "('ordermesh-gateway-typo', ['app']")
    with pytest.raises(AssemblyError, match="ordermesh-gateway-typo"):
        tilt_stubs.load(source)


def test_a_tiltfile_claiming_a_services_own_object_fails_to_assemble() -> None:
    # Services join their workload by themselves; claiming one again is Tilt's error.
    source = variant(
        "    if obj['kind'] == 'Service' or is_workload(obj):",
        "    if is_workload(obj):",
    )
    with pytest.raises(AssemblyError, match="remaining YAML"):
        tilt_stubs.load(source)


def test_a_tiltfile_building_an_image_nothing_runs_fails_the_check() -> None:
    source = variant("'ordermesh/' + service", "'ordermesh/x-' + service")
    problems = image_problems(tilt_stubs.load(source))
    assert "ordermesh/x-gateway: built but no Deployment runs it" in problems
    assert "ordermesh/gateway: run by the chart but not built" in problems


def test_a_port_forward_to_a_closed_port_fails_the_check() -> None:
    source = variant("port_forward(GATEWAY_PORT, 8080,", "port_forward(GATEWAY_PORT, 8081,")
    assert any("forwards to 8081" in problem for problem in port_problems(tilt_stubs.load(source)))
