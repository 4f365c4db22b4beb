"""Plain manifests for `kubectl apply` users, rendered from charts/ordermesh.

`ordermesh k8s-manifests` writes k8s/manifests/ from the chart's default values
(release `ordermesh`, namespace `ordermesh`); `--check` fails when the committed files
differ, and a test does the same, so the manifests never drift from the chart.
Numbered files, because `kubectl apply -f k8s/manifests/` applies them in name order:
the namespace first, then the core objects in Helm's install order, the Grafana
dashboards, and last the objects that need KEDA's or prometheus-operator's CRDs (they
fail alone when those are missing). Each document keeps the text Helm rendered,
comments included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, NamedTuple

import yaml

from ordermesh import chart, generated
from ordermesh.paths import REPO_ROOT

MANIFEST_DIR: Final = REPO_ROOT / "k8s" / "manifests"
HEADER: Final = (
    "# Rendered from charts/ordermesh (default values, release {release}, namespace\n"
    "# {namespace}) by `ordermesh k8s-manifests`; edit the chart, not this file.\n"
)
# Helm's install order (pkg/release/util/kind_sorter.go) for the kinds the chart has.
INSTALL_ORDER: Final = (
    "Namespace",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "Service",
    "Deployment",
    "HorizontalPodAutoscaler",
    "Ingress",
)
CRD_GROUPS: Final = ("keda.sh/", "monitoring.coreos.com/")
_DOCUMENT_START: Final = re.compile(r"^---[ \t]*$", re.MULTILINE)


class Document(NamedTuple):
    template: str  # the chart template it came from, e.g. deployment.yaml
    obj: dict[str, Any]
    text: str


def namespace_manifest(namespace: str) -> str:
    """The namespace, enforcing the Pod Security Standards profile every pod meets."""
    labels = {
        "kubernetes.io/metadata.name": namespace,
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": labels},
    }
    return yaml.safe_dump(body, sort_keys=False)


def documents(rendered: Mapping[str, str]) -> list[Document]:
    """Every non-empty document Helm rendered, NOTES.txt aside, in template order."""
    found = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            continue
        for text in _DOCUMENT_START.split(rendered[path]):
            obj = yaml.safe_load(text)
            if obj:
                found.append(Document(Path(path).name, obj, text.strip("\n") + "\n"))
    return found


def _rank(obj: Mapping[str, Any]) -> int:
    kind = obj["kind"]
    return INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)


def _file_of(doc: Document) -> str:
    if str(doc.obj["apiVersion"]).startswith(CRD_GROUPS):
        return "30-custom-resources.yaml"
    return (
        "20-grafana-dashboards.yaml" if doc.template == "dashboards.yaml" else "10-ordermesh.yaml"
    )


def manifests(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = chart.RELEASE,
    namespace: str = chart.NAMESPACE,
) -> dict[str, str]:
    """File name -> the text k8s/manifests should hold."""
    header = HEADER.format(release=release, namespace=namespace)
    files = {"00-namespace.yaml": header + "---\n" + namespace_manifest(namespace)}
    rendered = chart.render_files(values, release=release, namespace=namespace)
    # sorted() is stable: within a kind, objects keep the chart's template order.
    for doc in sorted(documents(rendered), key=lambda doc: _rank(doc.obj)):
        name = _file_of(doc)
        files[name] = files.get(name, header) + "---\n" + doc.text
    return dict(sorted(files.items()))


def _expected(directory: Path) -> dict[Path, bytes]:
    return {directory / name: text.encode() for name, text in manifests().items()}


def write(directory: Path = MANIFEST_DIR) -> list[Path]:
    """Write the manifests; remove YAML files no longer rendered. Returns what changed."""
    return generated.write(_expected(directory), directory.glob("*.yaml"))


def stale(directory: Path = MANIFEST_DIR) -> list[Path]:
    """Files that are missing, differ from the chart's rendering, or are left over."""
    return generated.stale(_expected(directory), directory.glob("*.yaml"))
