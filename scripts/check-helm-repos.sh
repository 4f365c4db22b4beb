#!/usr/bin/env bash
# Checks that every Helm repository k8s/deps/charts.env names is known to helm
# (`helm repo list`), and fails naming the missing ones. The repositories are never
# added from here: this repository names no chart repository address; their projects'
# documentation gives it (docs/local-cluster.md). Used by scripts/e2e-kind.sh and the
# Tiltfile's helm-repos resource.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=k8s/deps/charts.env
source k8s/deps/charts.env

command -v helm >/dev/null || {
  echo "check-helm-repos: helm is not on PATH" >&2
  exit 1
}

known=$(helm repo list --output yaml 2>/dev/null | sed -n 's/^ *name: *//p' || true)
missing=()
IFS=, read -ra wanted <<<"$HELM_REPOS"
for repo in "${wanted[@]}"; do
  grep -qx -- "$repo" <<<"$known" || missing+=("$repo")
done

if ((${#missing[@]})); then
  {
    echo "check-helm-repos: helm does not know the chart repositories: ${missing[*]}"
    echo "  Add each once under that name, with the address its project documents:"
    echo "    prometheus-community  (kube-prometheus-stack, prometheus-adapter: the Prometheus community Helm charts)"
    echo "    kedacore              (keda: the KEDA project's Helm charts)"
    echo "  e.g. helm repo add <name> <address>; then helm repo update."
  } >&2
  exit 1
fi
echo "check-helm-repos: ${wanted[*]} known to helm"
