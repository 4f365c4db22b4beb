"""Generated copies stay in step: k8s/manifests with the chart, and the chart's files/
with observability/ (dashboards and rules)."""

from __future__ import annotations

from pathlib import Path

import yaml
from ordermesh import dashboards, k8s_manifests
from ordermesh.cli import main

from tests.deploy.cases import objects


def test_committed_manifests_are_the_chart_rendered() -> None:
    assert k8s_manifests.stale() == [], "run `ordermesh k8s-manifests` and commit k8s/manifests"
    assert main(["k8s-manifests", "--check"]) == 0
    applied = [
        doc
        for path in sorted(k8s_manifests.MANIFEST_DIR.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    namespace, *rest = applied
    assert namespace["kind"] == "Namespace"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    key = lambda obj: (obj["kind"], obj["metadata"]["name"])  # noqa: E731
    assert sorted(rest, key=key) == sorted(objects("default"), key=key)


def test_manifest_drift_is_reported(tmp_path: Path) -> None:
    assert {path.name for path in k8s_manifests.stale(tmp_path)} == set(k8s_manifests.manifests())
    k8s_manifests.write(tmp_path)
    assert k8s_manifests.stale(tmp_path) == []
    edited = tmp_path / "10-ordermesh.yaml"
    edited.write_text(edited.read_text().replace("maxUnavailable: 1", "maxUnavailable: 2"))
    leftover = tmp_path / "40-old.yaml"
    leftover.write_text("kind: ConfigMap\n")
    assert k8s_manifests.stale(tmp_path) == [edited, leftover]
    assert set(k8s_manifests.write(tmp_path)) == {edited, leftover}
    assert not leftover.exists()


def test_chart_copies_of_dashboards_and_rules_are_current() -> None:
    assert dashboards.stale_chart_copies() == [], "run `ordermesh dashboards` and commit"
    assert main(["dashboards", "--check"]) == 0


def test_chart_copy_drift_is_reported(tmp_path: Path) -> None:
    expected = dashboards.chart_copies(tmp_path)
    assert set(dashboards.stale_chart_copies(tmp_path)) == set(expected)
    dashboards.write_chart_copies(tmp_path)
    assert dashboards.stale_chart_copies(tmp_path) == []
    rule = tmp_path / "rules" / "alerts.yml"
    rule.write_bytes(rule.read_bytes() + b"# edited\n")
    orphan = tmp_path / "dashboards" / "removed.json"
    orphan.write_text("{}\n")
    assert dashboards.stale_chart_copies(tmp_path) == [rule, orphan]
    dashboards.write_chart_copies(tmp_path)
    assert dashboards.stale_chart_copies(tmp_path) == []
    assert not orphan.exists()
