"""Render charts/ordermesh offline with real Helm (helm-python-sdk: Helm v4 as a library).

One place for "what would `helm template` give": the deploy checks, the autoscaling
signal contract test and `ordermesh k8s-manifests` all render through here, so they
see the same objects a user's `helm install` would create.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ordermesh.paths import REPO_ROOT

CHART_DIR = REPO_ROOT / "charts" / "ordermesh"
EXAMPLES_DIR = CHART_DIR / "examples"
RELEASE = "ordermesh"
NAMESPACE = "ordermesh"

Manifest = dict[str, Any]


def example_values_files() -> list[Path]:
    """Every example values file the chart ships (each is rendered and checked)."""
    return sorted(EXAMPLES_DIR.glob("*.yaml"))


def load_values(files: Iterable[Path] = (), overrides: Mapping[str, Any] | None = None) -> Manifest:
    """Values as `helm -f a.yaml -f b.yaml` merges them (later wins), then `overrides`."""
    merged: Manifest = {}
    for path in files:
        merged = deep_merge(merged, yaml.safe_load(path.read_text()) or {})
    return deep_merge(merged, dict(overrides or {}))


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> Manifest:
    """Maps merge key by key; anything else (lists included) is replaced, as in Helm."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def render_files(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    chart_dir: Path = CHART_DIR,
) -> dict[str, str]:
    """Template path -> rendered text, as Helm produces them for an install."""
    import helm_python  # a dev dependency: only the deploy tooling renders charts

    with helm_python.Chart.load(chart_dir) as chart:
        chart.validate_schema(dict(values or {}))
        return chart.render(
            values=dict(values or {}), name=release, namespace=namespace, is_install=True
        )


def render(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    chart_dir: Path = CHART_DIR,
) -> list[Manifest]:
    """Every object the chart renders (NOTES.txt and empty documents left out)."""
    files = render_files(values, release=release, namespace=namespace, chart_dir=chart_dir)
    objects: list[Manifest] = []
    for path in sorted(files):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(files[path]) if doc)
    return objects


def notes(values: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
    """The NOTES.txt Helm prints after an install."""
    files = render_files(values, **kwargs)
    return next((text for path, text in files.items() if path.endswith("NOTES.txt")), "")


def lint(
    values: Mapping[str, Any] | None = None,
    *,
    namespace: str = NAMESPACE,
    kube_version: str | None = None,
    chart_dir: Path = CHART_DIR,
) -> list[str]:
    """What `helm lint --strict` finds (warnings count, as in CI), one line each."""
    import helm_python

    report = helm_python.lint(
        str(chart_dir),
        dict(values or {}),
        strict=True,
        namespace=namespace,
        kube_version=kube_version,
    )
    # Severity 1 is information ("icon is recommended"), 2 a warning, 3 an error.
    findings = [
        f"{m['path']}: {m['error'].strip()}" for m in report["messages"] if m["severity"] >= 2
    ]
    return findings or [str(error).strip() for error in report["errors"]]


def find(objects: Iterable[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    """Objects of one kind (and name, when given)."""
    return [
        obj
        for obj in objects
        if obj.get("kind") == kind and (name is None or obj["metadata"]["name"] == name)
    ]
