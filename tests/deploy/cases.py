"""The renderings every deploy check runs over, each made once per test session.

A case is a values file the chart ships (or the defaults), rendered the way a user
installs it: release `ordermesh` into namespace `ordermesh`.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from ordermesh import chart

Manifest = chart.Manifest
DEFAULT = "default"
CASES: tuple[str, ...] = (DEFAULT, *(path.stem for path in chart.example_values_files()))
# The Kubernetes minors every object is validated against: the lowest the chart
# admits (Chart.yaml kubeVersion) and the newest kubernetes-validate knows.
KUBE_VERSIONS: tuple[str, ...] = ("1.32", "1.35", "1.37")


def values(case: str) -> Manifest:
    """The values of one case, as `helm -f examples/<case>.yaml` would merge them."""
    if case == DEFAULT:
        return {}
    return chart.load_values([chart.EXAMPLES_DIR / f"{case}.yaml"])


@functools.cache
def _objects(case: str) -> tuple[Manifest, ...]:
    return tuple(chart.render(values(case)))


def objects(case: str) -> list[Manifest]:
    """Every object the case renders: a deep copy, so a test may mutate it."""
    return copy.deepcopy(list(_objects(case)))


def one(objs: list[Manifest], kind: str, name: str) -> Manifest:
    """The single object of that kind and name."""
    found = chart.find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_spec(deployment: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec
