"""The environment that points tests/e2e at the gateway on the kind cluster.

Prints `export NAME=value` lines for `eval`: the gateway's URL (a port-forward), the
JWT secret of the dev Secret (k8s/dev/secrets.yaml), the gateway limits the kind values
set (k8s/kind/values-e2e.yaml), and the kubectl commands that pause and resume notify
(tests/e2e/target.py says what each variable means). scripts/e2e-kind.sh and the
Tiltfile's e2e resource both use it, so the suite runs with one set of settings.

    eval "$(.venv/bin/python scripts/kind_e2e_env.py --url http://127.0.0.1:8080)"
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SECRETS = REPO_ROOT / "k8s" / "dev" / "secrets.yaml"
E2E_VALUES = REPO_ROOT / "k8s" / "kind" / "values-e2e.yaml"
NAMESPACE = "ordermesh"
RELEASE = "ordermesh"
# The suite's variable for each gateway setting it must know.
LIMITS = {
    "ORDERMESH_E2E_MAX_IN_FLIGHT": "GATEWAY_MAX_IN_FLIGHT",
    "ORDERMESH_E2E_MAX_QUEUED": "GATEWAY_MAX_QUEUED",
    "ORDERMESH_E2E_RATE_BURST": "GATEWAY_RATE_LIMIT_BURST",
    "ORDERMESH_E2E_MAX_BODY_BYTES": "GATEWAY_MAX_BODY_BYTES",
}
# Longer than the dev pods' termination grace (preStop + drain + margin), shorter than
# the 60 s the suite gives each command.
WAIT_SECONDS = 50


def jwt_secret(secrets_file: Path = SECRETS) -> str:
    """GATEWAY_JWT_SECRET of the gateway's dev Secret."""
    for doc in yaml.safe_load_all(secrets_file.read_text()):
        if doc and doc["kind"] == "Secret" and doc["metadata"]["name"] == f"{RELEASE}-gateway":
            return str(doc["stringData"]["GATEWAY_JWT_SECRET"])
    raise SystemExit(f"no Secret {RELEASE}-gateway in {secrets_file}")


def limits(values_file: Path = E2E_VALUES) -> dict[str, str]:
    """ORDERMESH_E2E_* limits from the gateway.config the kind values set."""
    values: Mapping[str, Any] = yaml.safe_load(values_file.read_text()) or {}
    config: Mapping[str, Any] = values.get("gateway", {}).get("config", {})
    missing = [setting for setting in LIMITS.values() if setting not in config]
    if missing:
        raise SystemExit(f"{values_file} must set gateway.config {', '.join(missing)}")
    return {variable: str(config[setting]) for variable, setting in LIMITS.items()}


def notify_commands(engine: str, context: str) -> tuple[str, str]:
    """Shell commands that take notify's pods away (until none is left) and bring one back.

    Scaling to 0 alone does not hold with KEDA: its HPA would scale notify back to the
    minimum within seconds, so the ScaledObject is paused at 0 replicas as well. A plain
    HPA does not act on a Deployment scaled to 0.
    """
    kubectl = f"kubectl --context {shlex.quote(context)} --namespace {NAMESPACE}"
    deployment = f"deployment/{RELEASE}-notify"
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=notify"
    no_pods_left = f'until [ -z "$({kubectl} get pods -l {selector} -o name)" ]; do sleep 1; done'
    gone = f"timeout {WAIT_SECONDS} sh -c {shlex.quote(no_pods_left)}"
    pause = [f"{kubectl} scale {deployment} --replicas=0", gone]
    resume = [
        f"{kubectl} scale {deployment} --replicas=1",
        f"{kubectl} rollout status {deployment} --timeout={WAIT_SECONDS}s",
    ]
    if engine == "keda":
        scaled_object = f"scaledobject/{RELEASE}-notify"
        annotation = "autoscaling.keda.sh/paused-replicas"
        pause.insert(0, f"{kubectl} annotate --overwrite {scaled_object} {annotation}=0")
        resume.insert(0, f"{kubectl} annotate {scaled_object} {annotation}-")
    return " && ".join(pause), " && ".join(resume)


def environment(url: str, engine: str, context: str) -> dict[str, str]:
    pause, resume = notify_commands(engine, context)
    return {
        "ORDERMESH_E2E_URL": url,
        "ORDERMESH_E2E_JWT_SECRET": jwt_secret(),
        **limits(),
        "ORDERMESH_E2E_PAUSE_NOTIFY": pause,
        "ORDERMESH_E2E_RESUME_NOTIFY": resume,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the gateway's URL")
    parser.add_argument("--engine", choices=["keda", "hpa"], default="keda")
    parser.add_argument("--context", default="kind-ordermesh", help="kubectl context")
    args = parser.parse_args(argv)
    for name, value in environment(args.url, args.engine, args.context).items():
        sys.stdout.write(f"export {name}={shlex.quote(value)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
