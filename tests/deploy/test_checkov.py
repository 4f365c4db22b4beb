"""checkov's Kubernetes policies pass on every rendering; each skip says why, in place.

checkov runs from its own virtualenv (`make deploy-tools`); one run covers every case
and a deliberately broken copy of a Deployment, which must fail.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from ordermesh.paths import REPO_ROOT

from tests.deploy.cases import CASES, Manifest, objects, one

CHECKOV = REPO_ROOT / ".tools" / "checkov" / "bin" / "checkov"
SKIP = re.compile(r"^(CKV2?_K8S_\d+)=(.{20,})$")
BROKEN = "broken-on-purpose"


def _broken_deployment() -> Manifest:
    """The gateway without its skip annotations, and privileged."""
    deployment = one(objects("default"), "Deployment", "ordermesh-gateway")
    deployment["metadata"]["name"] = BROKEN
    deployment["metadata"]["annotations"] = {}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["privileged"] = True
    return deployment


@functools.cache
def _report() -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV.relative_to(REPO_ROOT)} is missing: run make deploy-tools")
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            Path(tmp, f"{case}.yaml").write_text(yaml.safe_dump_all(objects(case)))
        Path(tmp, f"{BROKEN}.yaml").write_text(yaml.safe_dump(_broken_deployment()))
        # --skip-download: nothing is fetched; the checks ship with checkov.
        run = subprocess.run(
            [str(CHECKOV), "-d", tmp, "--framework", "kubernetes", "--skip-download", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert run.stdout.startswith("{"), run.stderr[-2000:]
    report: dict[str, Any] = json.loads(run.stdout)
    assert report["check_type"] == "kubernetes"
    return report


def _by_file(section: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for check in _report()["results"][section]:
        found.setdefault(Path(check["file_path"]).stem, []).append(check)
    return found


def test_every_rendering_passes_checkov() -> None:
    failed = _by_file("failed_checks")
    failures = {
        case: [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in failed.get(case, [])]
        for case in CASES
    }
    assert failures == {case: [] for case in CASES}
    assert _report()["results"]["parsing_errors"] == []
    passed = _by_file("passed_checks")
    for case in CASES:  # the policies did run over each case's pods
        deployments = {c["resource"] for c in passed.get(case, []) if c["check_id"] == "CKV_K8S_20"}
        assert len(deployments) == 3, (case, deployments)


def test_skips_are_the_annotated_ones_with_reasons() -> None:
    skipped = [c for case in CASES for c in _by_file("skipped_checks").get(case, [])]
    assert skipped
    assert all(len(c["check_result"].get("suppress_comment", "")) >= 20 for c in skipped)
    for obj in objects("default"):
        for key, value in obj["metadata"].get("annotations", {}).items():
            if key.startswith("checkov.io/skip"):
                assert SKIP.match(value), f"{obj['kind']} {obj['metadata']['name']}: {value}"


def test_checkov_fails_the_broken_deployment() -> None:
    failed = {c["check_id"] for c in _by_file("failed_checks").get(BROKEN, [])}
    # privileged, and the three checks the chart skips with a reason
    assert {"CKV_K8S_16", "CKV_K8S_43", "CKV_K8S_15", "CKV_K8S_35"} <= failed, failed
