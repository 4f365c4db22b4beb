"""Every rendering keeps the house rules (tests/deploy/policy.py), and each rule bites."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.deploy import policy
from tests.deploy.cases import Manifest, objects, one, pod_spec


@pytest.mark.parametrize("rule", sorted(policy.CHECKS))
def test_rendering_keeps_the_rule(rule: str, chart_objects: list[Manifest]) -> None:
    assert policy.deployments(chart_objects), "nothing to check"
    assert policy.CHECKS[rule](chart_objects) == []


def _escalate(objs: list[Manifest]) -> None:
    spec = pod_spec(one(objs, "Deployment", "ordermesh-orders"))
    spec["initContainers"][0]["securityContext"]["allowPrivilegeEscalation"] = True


def _drop_readiness(objs: list[Manifest]) -> None:
    del pod_spec(one(objs, "Deployment", "ordermesh-gateway"))["containers"][0]["readinessProbe"]


def _http_readiness_for_grpc(objs: list[Manifest]) -> None:
    container = pod_spec(one(objs, "Deployment", "ordermesh-orders"))["containers"][0]
    container["readinessProbe"] = {"tcpSocket": {"port": 50051}}


def _no_memory_limit(objs: list[Manifest]) -> None:
    spec = pod_spec(one(objs, "Deployment", "ordermesh-notify"))
    del spec["initContainers"][0]["resources"]["limits"]["memory"]


def _literal_secret(objs: list[Manifest]) -> None:
    container = pod_spec(one(objs, "Deployment", "ordermesh-gateway"))["containers"][0]
    container["env"].append({"name": "GATEWAY_JWT_SECRET", "value": "hunter2hunter2"})


def _remove_default_deny(objs: list[Manifest]) -> None:
    objs.remove(one(objs, "NetworkPolicy", "ordermesh-default-deny"))


def _relabel_pods(objs: list[Manifest]) -> None:
    # Pods no per-service policy or PDB selects any more.
    labels = one(objs, "Deployment", "ordermesh-notify")["spec"]["template"]["metadata"]["labels"]
    labels["app.kubernetes.io/component"] = "notifier"


def _short_grace(objs: list[Manifest]) -> None:
    pod_spec(one(objs, "Deployment", "ordermesh-notify"))["terminationGracePeriodSeconds"] = 12


def _shared_account(objs: list[Manifest]) -> None:
    pod_spec(one(objs, "Deployment", "ordermesh-notify"))["serviceAccountName"] = (
        "ordermesh-gateway"
    )


def _token_mounted(objs: list[Manifest]) -> None:
    one(objs, "ServiceAccount", "ordermesh-orders")["automountServiceAccountToken"] = True


def _latest(objs: list[Manifest]) -> None:
    pod_spec(one(objs, "Deployment", "ordermesh-orders"))["containers"][0]["image"] = (
        "ordermesh/orders:latest"
    )


def _no_app_protocol(objs: list[Manifest]) -> None:
    del one(objs, "Service", "ordermesh-orders")["spec"]["ports"][0]["appProtocol"]


def _writable_tmpless(objs: list[Manifest]) -> None:
    container = pod_spec(one(objs, "Deployment", "ordermesh-gateway"))["containers"][0]
    container["volumeMounts"] = []


BREAKAGES: list[tuple[str, Callable[[list[Manifest]], None], str]] = [
    ("restricted security", _escalate, "ordermesh-orders/migrate (init): allowPrivilegeEscalation"),
    ("restricted security", _writable_tmpless, "ordermesh-gateway/gateway: /tmp"),
    ("probes and resources", _drop_readiness, "ordermesh-gateway/gateway: no readinessProbe"),
    ("probes and resources", _http_readiness_for_grpc, "without a native gRPC readinessProbe"),
    ("probes and resources", _no_memory_limit, "migrate (init): no limits.memory"),
    ("no literal secrets", _literal_secret, "GATEWAY_JWT_SECRET has a literal value"),
    ("network policy coverage", _remove_default_deny, "no default-deny Ingress"),
    ("network policy coverage", _relabel_pods, "ordermesh-notify: no Ingress policy allows"),
    ("disruption budgets", _relabel_pods, "ordermesh-notify: 0 PodDisruptionBudgets"),
    ("grace periods", _short_grace, "grace 12s < preStop 5s + drain 10s"),
    ("service accounts", _shared_account, "shares ServiceAccount ordermesh-gateway"),
    ("service accounts", _token_mounted, "automountServiceAccountToken not false"),
    ("image tags", _latest, "ordermesh/orders:latest is not pinned"),
    ("grpc appProtocol", _no_app_protocol, "port grpc: no appProtocol"),
]


@pytest.mark.parametrize(
    ("rule", "breakage", "expected"),
    BREAKAGES,
    ids=[f"{rule}-{breakage.__name__.strip('_')}" for rule, breakage, _ in BREAKAGES],
)
def test_rule_reports_a_broken_object(
    rule: str, breakage: Callable[[list[Manifest]], None], expected: str
) -> None:
    objs = objects("default")
    assert policy.CHECKS[rule](objs) == []
    breakage(objs)
    problems = policy.CHECKS[rule](objs)
    assert any(expected in problem for problem in problems), problems
