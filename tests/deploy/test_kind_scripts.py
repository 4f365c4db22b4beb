"""The kind e2e script, the autoscaling check, their helpers and the CI workflow.

What runs here runs for real: bash's parser and shellcheck on every script, the
e2e script's prerequisite check with nothing on PATH, the suite's environment helper,
and the in-cluster load generator against a local HTTP server. The cluster itself is
not here; the workflow is checked for running what exists.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import jwt
import pytest
import yaml
from ordermesh import chart
from ordermesh.paths import REPO_ROOT

from tests.deploy import dockerfile_model

SCRIPTS = REPO_ROOT / "scripts"
E2E_KIND = SCRIPTS / "e2e-kind.sh"
AUTOSCALING_CHECK = SCRIPTS / "kind-autoscaling-check.sh"
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "e2e-kind.yml"
E2E_VALUES = REPO_ROOT / "k8s" / "kind" / "values-e2e.yaml"
LOAD_JOBS = sorted((REPO_ROOT / "k8s" / "dev" / "load").glob("*-job.yaml"))
# The scripts of the kind run, linted at shellcheck's strictest; any other script in
# scripts/ at warning level (its owner keeps it to their own standard).
KIND_SCRIPTS = ("e2e-kind.sh", "kind-autoscaling-check.sh", "check-helm-repos.sh")
PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python")
DEV_SECRET = "dev-secret-change-me-not-for-production"


def script_module(name: str) -> ModuleType:
    """scripts/<name>.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shell_scripts() -> list[Path]:
    return sorted(SCRIPTS.glob("*.sh"))


def makefile_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+):", text, flags=re.MULTILINE))


def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def steps(job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workflow()["jobs"][job]["steps"]
    return found


def dev_values() -> dict[str, Any]:
    return chart.load_values([chart.EXAMPLES_DIR / "dev.yaml", E2E_VALUES])


def dev_objects() -> list[dict[str, Any]]:
    return chart.render(dev_values())


# --- the scripts ---------------------------------------------------------------------


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda path: path.name)
def test_every_script_parses_and_is_executable(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert os.access(script, os.X_OK), f"{script.name} is not executable"


def test_the_kind_scripts_are_strict_bash() -> None:
    for name in KIND_SCRIPTS:
        text = (SCRIPTS / name).read_text()
        assert text.startswith("#!/usr/bin/env bash\n"), name
        assert "\nset -euo pipefail\n" in text, name


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda path: path.name)
def test_shellcheck(script: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        if os.environ.get("CI") == "true":
            pytest.fail("shellcheck is missing: `apt-get install shellcheck` (CI must have it)")
        pytest.skip("shellcheck is not installed (CI=true makes this a failure)")
    severity = "style" if script.name in KIND_SCRIPTS else "warning"
    result = subprocess.run(
        [
            shellcheck,
            "--external-sources",
            f"--severity={severity}",
            str(script.relative_to(REPO_ROOT)),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_e2e_kind_names_what_is_missing_when_the_tools_are_not_there(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname",):  # all the script needs before its check
        os.symlink(shutil.which(tool) or f"/usr/bin/{tool}", bin_dir / tool)
    result = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(E2E_KIND)],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "not on PATH: docker kind kubectl helm" in result.stderr, result.stderr
    assert "docs/local-cluster.md" in result.stderr


def test_e2e_kind_builds_loads_and_installs_each_image_and_the_chart() -> None:
    text = E2E_KIND.read_text()
    services = re.search(r"^SERVICES=\(([^)]*)\)$", text, flags=re.MULTILINE)
    assert services is not None
    assert tuple(services[1].split()) == dockerfile_model.SERVICES
    assert 'docker build --file "services/$service/Dockerfile"' in text
    assert 'kind load docker-image --name "$CLUSTER" "ordermesh/$service:$TAG"' in text
    assert "--values charts/ordermesh/examples/dev.yaml --values k8s/kind/values-e2e.yaml" in text
    # The keys it sets exist in the chart's values.
    values = yaml.safe_load((chart.CHART_DIR / "values.yaml").read_text())
    assert '--set "image.tag=$TAG"' in text
    assert "tag" in values["image"]
    assert '--set "autoscaling.engine=$ENGINE"' in text
    assert values["autoscaling"]["engine"] == "keda"
    # Upstream charts at the pinned versions, from one place.
    for prefix in ("KUBE_PROMETHEUS_STACK", "KEDA", "PROMETHEUS_ADAPTER"):
        assert f'"${prefix}_CHART"' in text
        assert f'"${prefix}_VERSION"' in text
    assert "kind create cluster --config k8s/kind/cluster.yaml" in text
    cluster = yaml.safe_load((REPO_ROOT / "k8s" / "kind" / "cluster.yaml").read_text())
    assert re.search(rf"^CLUSTER={cluster['name']}$", text, flags=re.MULTILINE)


def test_e2e_kind_waits_runs_the_suite_and_cleans_up_after_itself() -> None:
    text = E2E_KIND.read_text()
    for needed in (
        "rollout status",
        "wait --for=condition=Ready pod",
        "port-forward",
        ".venv/bin/pytest tests/e2e",
        "scripts/kind_e2e_env.py",
        "scripts/kind-autoscaling-check.sh",
        "get events --all-namespaces",
        "describe pods",
        'logs "$pod" --all-containers',
        'kind delete cluster --name "$CLUSTER"',
        "trap finish EXIT",
    ):
        assert needed in text, needed
    # The cluster goes only when this run made it and KEEP_CLUSTER is not 1.
    assert "if ((created_cluster)) && [[ $KEEP_CLUSTER != 1 ]]; then" in text


def test_the_autoscaling_check_loads_with_jobs_that_exist_and_scale_the_dev_release() -> None:
    text = AUTOSCALING_CHECK.read_text()
    assert "k8s/dev/load/$1-job.yaml" in text
    assert {path.name for path in LOAD_JOBS} == {"reads-job.yaml", "orders-job.yaml"}
    for kind in ("reads", "orders"):
        assert f"start_load {kind}" in text
    # The image the check swaps in is the one each Job names.
    swap = re.search(r'sed "s\|image: ([^|]+)\|image: \$image\|"', text)
    assert swap is not None
    for job_file in LOAD_JOBS:
        assert f"image: {swap[1]}\n" in job_file.read_text(), job_file.name
    for phase in ("scaled out", "back at its minimum"):
        assert text.count(phase) >= 2, phase  # gateway and notify


def test_the_load_is_enough_to_scale_out_and_the_jobs_args_parse() -> None:
    kind_load = script_module("kind_load")  # for its argument parser
    jobs = {path.stem: yaml.safe_load(path.read_text()) for path in LOAD_JOBS}
    args = {
        name: kind_load.parser().parse_args(
            job["spec"]["template"]["spec"]["containers"][0]["args"]
        )
        for name, job in jobs.items()
    }
    scaled = {o["metadata"]["name"]: o for o in chart.find(dev_objects(), "ScaledObject")}
    gateway, notify = scaled["ordermesh-gateway"]["spec"], scaled["ordermesh-notify"]["spec"]
    per_pod = float(gateway["triggers"][0]["metadata"]["threshold"])
    # ceil(rate / target) beyond the minimum and beyond HPA's 10% tolerance.
    assert args["reads-job"].rate > per_pod * gateway["minReplicaCount"] * 1.1
    per_replica = float(notify["triggers"][0]["metadata"]["threshold"])
    assert args["orders-job"].count > per_replica * notify["maxReplicaCount"] * 2
    for job in jobs.values():
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["python", "/load/kind_load.py"]
        url = next(a for a in container["args"] if a.startswith("--url="))
        assert url == "--url=http://ordermesh-gateway.ordermesh.svc:8080"
        # Its pods must not fall under the release's default-deny policy.
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] != "ordermesh"


# --- the suite's environment ---------------------------------------------------------


def kind_e2e_env(*args: str) -> dict[str, str]:
    """The variables scripts/kind_e2e_env.py exports, as bash's eval sets them."""
    script = f'eval "$({PYTHON} scripts/kind_e2e_env.py {" ".join(args)})"; env -0'
    result = subprocess.run(
        ["bash", "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True, env={}
    )
    pairs = (item.split("=", 1) for item in result.stdout.split("\0") if "=" in item)
    return {key: value for key, value in pairs if key.startswith("ORDERMESH_E2E_")}


@pytest.mark.parametrize("engine", ["keda", "hpa"])
def test_the_suites_environment_matches_the_release_it_tests(engine: str) -> None:
    env = kind_e2e_env("--url", "http://127.0.0.1:18080", "--engine", engine)
    assert env["ORDERMESH_E2E_URL"] == "http://127.0.0.1:18080"
    assert env["ORDERMESH_E2E_JWT_SECRET"] == DEV_SECRET
    config = chart.find(dev_objects(), "ConfigMap", "ordermesh-gateway")[0]["data"]
    assert env["ORDERMESH_E2E_MAX_IN_FLIGHT"] == config["GATEWAY_MAX_IN_FLIGHT"]
    assert env["ORDERMESH_E2E_MAX_QUEUED"] == config["GATEWAY_MAX_QUEUED"]
    assert float(config["GATEWAY_MAX_QUEUE_SECONDS"]) > 10  # the 503 test holds the queue
    assert env["ORDERMESH_E2E_RATE_BURST"] == config["GATEWAY_RATE_LIMIT_BURST"]
    assert env["ORDERMESH_E2E_MAX_BODY_BYTES"] == config["GATEWAY_MAX_BODY_BYTES"]
    objects = chart.render(chart.deep_merge(dev_values(), {"autoscaling": {"engine": engine}}))
    notify = chart.find(objects, "Deployment", "ordermesh-notify")[0]
    pod_labels = notify["spec"]["template"]["metadata"]["labels"]
    pause, resume = env["ORDERMESH_E2E_PAUSE_NOTIFY"], env["ORDERMESH_E2E_RESUME_NOTIFY"]
    for command in (pause, resume):
        assert "--context kind-ordermesh --namespace ordermesh" in command
        assert "deployment/ordermesh-notify" in command
    selector = re.search(r"get pods -l (\S+) ", pause)
    assert selector is not None
    assert all(pod_labels[k] == v for k, v in (p.split("=") for p in selector[1].split(",")))
    if engine == "keda":
        assert chart.find(objects, "ScaledObject", "ordermesh-notify")
        assert "scaledobject/ordermesh-notify autoscaling.keda.sh/paused-replicas=0" in pause
        assert "autoscaling.keda.sh/paused-replicas-" in resume
    else:
        assert not chart.find(objects, "ScaledObject")
        assert "scaledobject" not in pause + resume


def test_the_environment_helper_refuses_values_without_the_limits(tmp_path: Path) -> None:
    kind_e2e_env = script_module("kind_e2e_env")
    values = tmp_path / "values.yaml"
    values.write_text("gateway:\n  config:\n    GATEWAY_MAX_IN_FLIGHT: '8'\n")
    with pytest.raises(SystemExit, match="GATEWAY_RATE_LIMIT_BURST"):
        kind_e2e_env.limits(values)


# --- the load generator, against a local server ---------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str, dict[str, str], bytes]]] = []
    status: ClassVar[int] = 0

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.requests.append((self.command, self.path, dict(self.headers), body))
        status = self.status or (201 if self.command == "POST" else 404)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = _answer  # noqa: N815
    do_POST = _answer  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Recorder", (_Recorder,), {"requests": [], "status": 0})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def run_load(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, str(SCRIPTS / "kind_load.py"), f"--url={url}", *args],
        env={"ORDERMESH_JWT_SECRET": DEV_SECRET, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def claims(headers: dict[str, str]) -> dict[str, Any]:
    token = headers["Authorization"].removeprefix("Bearer ")
    decoded: dict[str, Any] = jwt.decode(
        token, DEV_SECRET, algorithms=["HS256"], audience="ordermesh-api", issuer="ordermesh-dev"
    )
    return decoded


def test_reads_come_at_the_rate_asked_with_valid_tokens(
    server: tuple[str, type[_Recorder]],
) -> None:
    url, handler = server
    started = time.monotonic()
    result = run_load(url, "--mode=reads", "--rate=40", "--seconds=1.5")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "404=" in result.stdout
    gets = [r for r in handler.requests if r[0] == "GET"]
    assert 45 <= len(gets) <= 75, len(gets)  # 40/s for 1.5 s, paced
    assert elapsed < 10
    for _, path, headers, _ in gets:
        uuid.UUID(path.removeprefix("/v1/orders/"))
        assert claims(headers)["sub"].startswith("load-")
    # Below the per-subject rate limit: at most 15/s per subject.
    subjects = {claims(headers)["sub"] for _, _, headers, _ in gets}
    assert len(subjects) >= 3


def test_orders_are_created_once_each_under_fresh_subjects(
    server: tuple[str, type[_Recorder]],
) -> None:
    url, handler = server
    result = run_load(url, "--mode=orders", "--count=65", "--concurrency=4")
    assert result.returncode == 0, result.stderr
    assert "65 requests, 201=65" in result.stdout
    posts = [r for r in handler.requests if r[0] == "POST"]
    assert len(posts) == 65
    assert {path for _, path, _, _ in posts} == {"/v1/orders"}
    keys = {headers["Idempotency-Key"] for _, _, headers, _ in posts}
    assert len(keys) == 65
    body = json.loads(posts[0][3])
    assert body["currency"] == "EUR"
    assert body["items"]
    per_subject: dict[str, int] = {}
    for _, _, headers, _ in posts:
        subject = claims(headers)["sub"]
        per_subject[subject] = per_subject.get(subject, 0) + 1
    assert max(per_subject.values()) <= 30  # within the kind values' burst of 40


def test_load_that_never_succeeds_exits_non_zero(server: tuple[str, type[_Recorder]]) -> None:
    url, handler = server
    handler.status = 500
    result = run_load(url, "--mode=orders", "--count=5", "--concurrency=2")
    assert result.returncode == 1
    assert "500=5" in result.stdout


# --- the workflow --------------------------------------------------------------------


def test_the_workflow_runs_on_push_pull_request_and_by_hand() -> None:
    triggers = workflow().get("on") or workflow()[True]  # YAML 1.1 reads `on` as true
    assert {"push", "pull_request", "workflow_dispatch"} <= set(triggers)
    engine = triggers["workflow_dispatch"]["inputs"]["autoscaling_engine"]
    assert engine["options"] == ["keda", "hpa"]


def workflow_problems(data: dict[Any, Any]) -> list[str]:
    """Make targets and scripts the workflow runs that do not exist."""
    runs = [step["run"] for job in data["jobs"].values() for step in job["steps"] if "run" in step]
    targets = makefile_targets()
    problems = [
        f"`make {target}` does not exist"
        for command in runs
        for target in re.findall(r"\bmake ([a-z][a-z0-9-]*)", command)
        if target not in targets
    ]
    problems += [
        f"{script} does not exist or is not executable"
        for command in runs
        for script in re.findall(r"\bscripts/\S+", command)
        if not os.access(REPO_ROOT / script, os.X_OK)
    ]
    return problems


def test_the_workflow_runs_the_script_and_make_targets_that_exist() -> None:
    assert workflow_problems(workflow()) == []
    assert "scripts/e2e-kind.sh" in [step.get("run") for step in steps("e2e-kind")]
    assert any("make test" in step.get("run", "") for step in steps("make-test"))
    assert any(step.get("run") == "make sync" for step in steps("e2e-kind"))


def test_a_workflow_running_what_does_not_exist_fails_the_check() -> None:
    broken = yaml.safe_load(
        WORKFLOW.read_text()
        .replace("run: make sync", "run: make synk")
        .replace("run: scripts/e2e-kind.sh", "run: scripts/e2e-kind-old.sh")
    )
    assert workflow_problems(broken) == [
        "`make synk` does not exist",
        "scripts/e2e-kind-old.sh does not exist or is not executable",
    ]


def test_actions_are_well_known_and_pinned_to_a_major_version() -> None:
    uses = [
        step["uses"]
        for job in workflow()["jobs"].values()
        for step in job["steps"]
        if "uses" in step
    ]
    assert uses
    for action in uses:
        assert re.fullmatch(r"[a-z0-9-]+/[a-z0-9-]+@v\d+", action), action
    assert {a.split("@")[0] for a in uses} >= {
        "actions/checkout",
        "actions/setup-python",
        "astral-sh/setup-uv",
        "azure/setup-helm",
        "helm/kind-action",
        "actions/upload-artifact",
    }


def test_the_workflows_tool_versions_match_the_repository() -> None:
    by_action = {step["uses"].split("@")[0]: step for step in steps("e2e-kind") if "uses" in step}
    makefile = (REPO_ROOT / "Makefile").read_text()
    uv_version = re.search(r"^UV_VERSION := (\S+)$", makefile, flags=re.MULTILINE)
    assert uv_version is not None
    assert by_action["astral-sh/setup-uv"]["with"]["version"] == uv_version[1]
    assert by_action["actions/setup-python"]["with"]["python-version"] == "3.11"
    kind = by_action["helm/kind-action"]["with"]
    assert kind["install_only"] is True, "the script creates the cluster from k8s/kind/cluster.yaml"
    # The node image in k8s/kind/cluster.yaml is one built for this kind release.
    cluster_text = (REPO_ROOT / "k8s" / "kind" / "cluster.yaml").read_text()
    assert f"kind {kind['version']}" in cluster_text
    node = re.search(r"kindest/node:(v\d+\.\d+\.\d+)@", cluster_text)
    assert node is not None
    assert kind["kubectl_version"] == node[1]


def test_the_workflow_adds_the_chart_repositories_from_variables_and_keeps_diagnostics() -> None:
    env_file = (REPO_ROOT / "k8s" / "deps" / "charts.env").read_text()
    repos = re.search(r"^HELM_REPOS=(\S+)$", env_file, flags=re.MULTILINE)
    assert repos is not None
    (repo_step,) = [s for s in steps("e2e-kind") if "helm repo add" in s.get("run", "")]
    for repo in repos[1].split(","):
        assert f"helm repo add {repo} " in repo_step["run"]
    assert all(value.startswith("${{ vars.") for value in repo_step["env"].values())
    (upload,) = [s for s in steps("e2e-kind") if s.get("uses", "").startswith("actions/upload")]
    assert upload["if"] == "failure()"
    assert upload["with"]["path"] == workflow()["jobs"]["e2e-kind"]["env"]["ARTIFACTS"]
