"""The house rules every rendering of the chart must keep, as functions over objects.

Each check takes the rendered objects and returns what breaks a rule, one readable
line per violation (empty: all good), so a test asserts `== []` and shows the lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

Manifest = dict[str, Any]
Check = Callable[[list[Manifest]], list[str]]

SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|KEY|CREDENTIAL|DATABASE_URL|AMQP_URL|DSN")
RESOURCES = ("cpu", "memory")
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def deployments(objs: list[Manifest]) -> list[Manifest]:
    return [obj for obj in objs if obj["kind"] == "Deployment"]


def containers(deployment: Manifest) -> Iterator[tuple[str, Manifest, bool]]:
    """(where, container, is_init) for every container of the pod template."""
    spec = deployment["spec"]["template"]["spec"]
    name = deployment["metadata"]["name"]
    for init in spec.get("initContainers", []):
        yield f"{name}/{init['name']} (init)", init, True
    for main in spec["containers"]:
        yield f"{name}/{main['name']}", main, False


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector matches the labels (matchLabels and matchExpressions)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def pod_labels(deployment: Manifest) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def restricted_security(objs: list[Manifest]) -> list[str]:
    """The Pod Security Standards "restricted" fields, and a read-only root with /tmp."""
    problems = []
    for deployment in deployments(objs):
        spec = deployment["spec"]["template"]["spec"]
        name = deployment["metadata"]["name"]
        pod = spec.get("securityContext", {})
        if pod.get("runAsNonRoot") is not True:
            problems.append(f"{name}: pod securityContext.runAsNonRoot is not true")
        if pod.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: pod seccompProfile is not RuntimeDefault")
        if pod.get("runAsUser", 0) == 0:
            problems.append(f"{name}: pod runs as user 0 (or no runAsUser)")
        problems += [
            f"{name}: {field} is set"
            for field in ("hostNetwork", "hostPID", "hostIPC")
            if spec.get(field)
        ]
        tmp_volumes = {
            volume["name"]
            for volume in spec.get("volumes", [])
            if "emptyDir" in volume and volume["emptyDir"].get("sizeLimit")
        }
        for where, container, _ in containers(deployment):
            sc = container.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities do not drop ALL")
            if sc.get("capabilities", {}).get("add"):
                problems.append(f"{where}: capabilities are added")
            if sc.get("privileged", False) is not False:
                problems.append(f"{where}: privileged")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem is writable")
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            if mounts.get("/tmp") not in tmp_volumes:
                problems.append(f"{where}: /tmp is not a size-limited emptyDir")
    return problems


def probes_and_resources(objs: list[Manifest]) -> list[str]:
    """Three probes on every main container (native gRPC readiness for a gRPC server),
    none on init containers; requests and limits of cpu and memory on all."""
    problems = []
    for deployment in deployments(objs):
        for where, container, is_init in containers(deployment):
            present = [probe for probe in PROBES if probe in container]
            if is_init and present:
                problems.append(f"{where}: an init container cannot have {present}")
            if not is_init:
                problems += [f"{where}: no {p}" for p in PROBES if p not in present]
                serves_grpc = any(port["name"] == "grpc" for port in container.get("ports", []))
                if serves_grpc and "grpc" not in container.get("readinessProbe", {}):
                    problems.append(f"{where}: serves gRPC without a native gRPC readinessProbe")
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                for resource in RESOURCES:
                    if resource not in resources.get(bound, {}):
                        problems.append(f"{where}: no {bound}.{resource}")
    return problems


def network_policy_coverage(objs: list[Manifest]) -> list[str]:
    """Every pod, in each direction, is selected by a default-deny (a policy of that
    type without rules) and by a policy allowing its flows."""
    policies = [obj for obj in objs if obj["kind"] == "NetworkPolicy"]
    problems = []
    for deployment in deployments(objs):
        labels = pod_labels(deployment)
        selecting = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
        name = deployment["metadata"]["name"]
        for direction in ("Ingress", "Egress"):
            typed = [p for p in selecting if direction in p["spec"].get("policyTypes", [])]
            if not any(not p["spec"].get(direction.lower()) for p in typed):
                problems.append(f"{name}: no default-deny {direction} policy selects its pods")
            if not any(p["spec"].get(direction.lower()) for p in typed):
                problems.append(f"{name}: no {direction} policy allows its flows")
    return problems


def disruption_budgets(objs: list[Manifest]) -> list[str]:
    """Every pod is covered by exactly one PodDisruptionBudget."""
    pdbs = [obj for obj in objs if obj["kind"] == "PodDisruptionBudget"]
    problems = []
    for deployment in deployments(objs):
        covering = [p for p in pdbs if selects(p["spec"]["selector"], pod_labels(deployment))]
        if len(covering) != 1:
            problems.append(
                f"{deployment['metadata']['name']}: {len(covering)} PodDisruptionBudgets"
            )
    return problems


def no_literal_secrets(objs: list[Manifest]) -> list[str]:
    """No secret-looking setting as a literal env value or in a ConfigMap."""
    problems = []
    for deployment in deployments(objs):
        for where, container, _ in containers(deployment):
            problems += [
                f"{where}: {env['name']} has a literal value"
                for env in container.get("env", [])
                if SECRET_NAME.search(env["name"]) and "value" in env
            ]
    for obj in objs:
        if obj["kind"] == "ConfigMap":
            keys = [key for key in obj.get("data", {}) if SECRET_NAME.search(key)]
            problems += [f"ConfigMap {obj['metadata']['name']}: holds {key}" for key in keys]
        if obj["kind"] == "Secret":
            problems.append(f"Secret {obj['metadata']['name']}: the chart renders a Secret")
    return problems


def service_accounts(objs: list[Manifest]) -> list[str]:
    """A ServiceAccount of its own per Deployment, no API token mounted anywhere."""
    accounts = {obj["metadata"]["name"]: obj for obj in objs if obj["kind"] == "ServiceAccount"}
    problems = []
    used: dict[str, str] = {}
    for deployment in deployments(objs):
        name = deployment["metadata"]["name"]
        spec = deployment["spec"]["template"]["spec"]
        account = spec.get("serviceAccountName", "default")
        if account not in accounts:
            problems.append(f"{name}: ServiceAccount {account} is not rendered by the chart")
        elif accounts[account].get("automountServiceAccountToken") is not False:
            problems.append(f"ServiceAccount {account}: automountServiceAccountToken not false")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: pod automountServiceAccountToken is not false")
        if account in used:
            problems.append(f"{name}: shares ServiceAccount {account} with {used[account]}")
        used[account] = name
    return problems


def _config_value(objs: list[Manifest], container: Manifest, key: str) -> str | None:
    """A setting as the container sees it: env first, then its envFrom ConfigMaps."""
    for env in container.get("env", []):
        if env["name"] == key and "value" in env:
            return str(env["value"])
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        for obj in objs:
            if obj["kind"] == "ConfigMap" and ref and obj["metadata"]["name"] == ref["name"]:
                value = obj.get("data", {}).get(key)
                if value is not None:
                    return str(value)
    return None


def grace_periods(objs: list[Manifest]) -> list[str]:
    """terminationGracePeriodSeconds covers the preStop sleep plus the drain."""
    problems = []
    for deployment in deployments(objs):
        spec = deployment["spec"]["template"]["spec"]
        grace = spec.get("terminationGracePeriodSeconds", 30)
        for where, container, is_init in containers(deployment):
            if is_init:
                continue
            command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
            argv = command.get("command", [])
            if len(argv) != 2 or argv[0] != "sleep":
                problems.append(f"{where}: preStop is not an exec sleep")
                continue
            prefix = container["name"].upper()
            drain = _config_value(objs, container, f"{prefix}_DRAIN_SECONDS")
            if drain is None:
                problems.append(f"{where}: {prefix}_DRAIN_SECONDS is not set")
                continue
            needed = float(argv[1]) + float(drain)
            if grace < needed:
                problems.append(f"{where}: grace {grace}s < preStop {argv[1]}s + drain {drain}s")
    return problems


def image_tags(objs: list[Manifest]) -> list[str]:
    """Every image pinned by a tag other than latest, or by digest."""
    problems = []
    for deployment in deployments(objs):
        for where, container, _ in containers(deployment):
            image = container["image"]
            tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
            if "@sha256:" not in image and tag in ("", "latest"):
                problems.append(f"{where}: image {image} is not pinned")
    return problems


def grpc_app_protocol(objs: list[Manifest]) -> list[str]:
    """Service ports carry appProtocol, and gRPC ports say grpc."""
    problems = []
    for service in (obj for obj in objs if obj["kind"] == "Service"):
        for port in service["spec"]["ports"]:
            protocol = port.get("appProtocol")
            where = f"Service {service['metadata']['name']} port {port.get('name')}"
            if protocol is None:
                problems.append(f"{where}: no appProtocol")
            elif str(port.get("name", "")).startswith("grpc") and protocol != "grpc":
                problems.append(f"{where}: appProtocol {protocol}, not grpc")
    return problems


CHECKS: dict[str, Check] = {
    "restricted security": restricted_security,
    "probes and resources": probes_and_resources,
    "network policy coverage": network_policy_coverage,
    "disruption budgets": disruption_budgets,
    "no literal secrets": no_literal_secrets,
    "service accounts": service_accounts,
    "grace periods": grace_periods,
    "image tags": image_tags,
    "grpc appProtocol": grpc_app_protocol,
}
