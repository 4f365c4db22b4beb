"""Every rendered object is valid Kubernetes: core kinds by kubernetes-validate's strict
schemas for each minor in KUBE_VERSIONS, custom resources by the vendored CRDs."""

from __future__ import annotations

import re

import kubernetes_validate  # type: ignore[import-untyped]  # ships no py.typed
import pytest
import yaml
from ordermesh import chart

from tests.deploy import crds
from tests.deploy.cases import KUBE_VERSIONS, Manifest, objects, one, pod_spec


def _core_errors(objs: list[Manifest], version: str) -> list[str]:
    errors = []
    for obj in objs:
        if crds.is_custom(obj):
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{obj['kind']} {obj['metadata']['name']}: {error.message}")
    return errors


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_core_objects_validate_strictly(version: str, chart_objects: list[Manifest]) -> None:
    assert _core_errors(chart_objects, version) == []


def test_custom_resources_validate_against_the_vendored_crds(
    chart_objects: list[Manifest],
) -> None:
    custom = [obj for obj in chart_objects if obj["apiVersion"].startswith(crds.CRD_GROUPS)]
    assert [error for obj in custom for error in crds.errors(obj)] == []
    assert all(crds.is_custom(obj) for obj in custom), "a custom kind without a vendored CRD"


def test_a_misspelt_field_fails_both_validations() -> None:
    objs = objects("dev")
    container = pod_spec(one(objs, "Deployment", "ordermesh-gateway"))["containers"][0]
    container["readinessProbe"]["periodSecond"] = 5
    assert any("periodSecond" in error for error in _core_errors(objs, KUBE_VERSIONS[0]))
    scaled = one(objs, "ScaledObject", "ordermesh-gateway")
    scaled["spec"]["pollingIntervall"] = 5
    scaled["spec"]["fallback"]["replicas"] = "four"
    errors = list(crds.errors(scaled))
    assert any("pollingIntervall" in error for error in errors), errors
    assert any("fallback.replicas" in error for error in errors), errors


def test_chart_kube_version_admits_exactly_the_validated_minors() -> None:
    constraint = yaml.safe_load((chart.CHART_DIR / "Chart.yaml").read_text())["kubeVersion"]
    match = re.fullmatch(r">=(\d+)\.(\d+)\.0-0", constraint)
    assert match, f"kubeVersion {constraint!r}: keep the >=X.Y.0-0 form this test reads"
    lowest = f"{match[1]}.{match[2]}"
    assert lowest == KUBE_VERSIONS[0], "validate the lowest Kubernetes the chart admits"
