"""Custom resources checked against the vendored CRDs in k8s/crds, with jsonschema.

An API server prunes (and, with kubectl's strict field validation, refuses) fields
a structural schema does not declare, unless it says
`x-kubernetes-preserve-unknown-fields`; so every declared object here gets
`additionalProperties: false` the same way. CEL rules (`x-kubernetes-validations`)
are not evaluated.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev group
import yaml
from ordermesh.paths import REPO_ROOT

CRD_GROUPS = ("keda.sh/", "monitoring.coreos.com/")
CRD_DIR = REPO_ROOT / "k8s" / "crds"
Schema = dict[str, Any]


def structural(schema: Schema) -> Schema:
    """The OpenAPI v3 schema of a CRD as JSON Schema with Kubernetes' pruning rules."""
    out = {key: value for key, value in schema.items() if not key.startswith("x-kubernetes")}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in schema:
        out["properties"] = {name: structural(sub) for name, sub in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            out["additionalProperties"] = False
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = structural(schema["additionalProperties"])
    if "items" in schema:
        out["items"] = structural(schema["items"])
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in schema:
            out[combinator] = [structural(sub) for sub in schema[combinator]]
    return out


@functools.cache
def schemas() -> dict[tuple[str, str], Schema]:
    """(apiVersion, kind) -> the JSON Schema of every served version of the vendored CRDs."""
    found: dict[tuple[str, str], Schema] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                schema = structural(version["schema"]["openAPIV3Schema"])
                # metadata is the API server's ObjectMeta, checked as any object's.
                schema["properties"]["metadata"] = {"type": "object"}
                found[(f"{group}/{version['name']}", kind)] = schema
    return found


def is_custom(obj: dict[str, Any]) -> bool:
    """Whether the object's kind comes from a vendored CRD rather than Kubernetes."""
    return (obj["apiVersion"], obj["kind"]) in schemas()


def errors(obj: dict[str, Any]) -> Iterator[str]:
    """What the CRD's schema refuses in the object, one line per error."""
    key = (obj["apiVersion"], obj["kind"])
    schema = schemas().get(key)
    if schema is None:
        yield f"no vendored CRD for {key[1]} {key[0]}"
        return
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(part) for part in error.absolute_path) or "(root)"
        yield f"{obj['kind']} {obj['metadata']['name']}: {where}: {error.message}"
