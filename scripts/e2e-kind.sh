#!/usr/bin/env bash
# End-to-end on a kind cluster (`make e2e-kind`, and CI's e2e-kind workflow):
#
#   1. creates the kind cluster of k8s/kind/cluster.yaml (or reuses it),
#   2. builds the three images and loads them into the cluster,
#   3. installs the dependencies: kube-prometheus-stack, KEDA (or prometheus-adapter
#      with AUTOSCALING_ENGINE=hpa) at the versions of k8s/deps/charts.env, then
#      k8s/deps and k8s/dev,
#   4. installs the chart with examples/dev.yaml and k8s/kind/values-e2e.yaml,
#   5. waits until everything is ready, port-forwards the gateway and runs tests/e2e
#      against it (scripts/kind_e2e_env.py sets the suite's environment),
#   6. runs the autoscaling check (scripts/kind-autoscaling-check.sh).
#
# On failure it writes events, descriptions and every pod's logs to $ARTIFACTS and
# prints the events. It deletes a cluster it created unless KEEP_CLUSTER=1, and never
# one it did not create.
#
#   AUTOSCALING_ENGINE  keda (default) or hpa
#   KEEP_CLUSTER        1: leave the cluster running afterwards
#   SKIP_AUTOSCALING    1: stop after the e2e suite
#   ARTIFACTS           where diagnostics go (default .state/e2e-kind)
#   GATEWAY_PORT        local port of the gateway's port-forward (default 18080)
#   TAG                 image tag (default dev)
set -euo pipefail

cd "$(dirname "$0")/.."

CLUSTER=ordermesh
CONTEXT=kind-$CLUSTER
RELEASE=ordermesh
NAMESPACE=ordermesh
DEPS_NAMESPACE=ordermesh-deps
SERVICES=(gateway orders notify)
ENGINE=${AUTOSCALING_ENGINE:-keda}
KEEP_CLUSTER=${KEEP_CLUSTER:-0}
SKIP_AUTOSCALING=${SKIP_AUTOSCALING:-0}
ARTIFACTS=${ARTIFACTS:-.state/e2e-kind}
GATEWAY_PORT=${GATEWAY_PORT:-18080}
TAG=${TAG:-dev}
WAIT=10m

# shellcheck source=k8s/deps/charts.env
source k8s/deps/charts.env

created_cluster=0
port_forward_pid=""
gateway_pinned=0

say() { echo "e2e-kind: $*"; }
fail() {
  echo "e2e-kind: ERROR: $*" >&2
  exit 1
}
k() { kubectl --context "$CONTEXT" "$@"; }

check_prerequisites() {
  local missing=()
  for tool in docker kind kubectl helm; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  ((${#missing[@]} == 0)) ||
    fail "not on PATH: ${missing[*]}. docs/local-cluster.md lists the prerequisites."
  docker info >/dev/null 2>&1 || fail "docker is installed but its engine does not answer (docker info)."
  [[ -x .venv/bin/pytest ]] || fail "no .venv: run \`make sync\` first."
  [[ $ENGINE == keda || $ENGINE == hpa ]] || fail "AUTOSCALING_ENGINE is keda or hpa, not '$ENGINE'."
  scripts/check-helm-repos.sh
}

create_cluster() {
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    say "reusing the kind cluster '$CLUSTER' (it stays when this run ends)"
  else
    say "creating the kind cluster '$CLUSTER'"
    kind create cluster --config k8s/kind/cluster.yaml --wait 180s
    created_cluster=1
  fi
}

build_images() {
  for service in "${SERVICES[@]}"; do
    say "building ordermesh/$service:$TAG"
    docker build --file "services/$service/Dockerfile" --build-arg "VERSION=$TAG" \
      --tag "ordermesh/$service:$TAG" .
    kind load docker-image --name "$CLUSTER" "ordermesh/$service:$TAG"
  done
}

helm_install() { # release chart version namespace values-file
  helm upgrade --install "$1" "$2" --version "$3" --namespace "$4" --values "$5" \
    --kube-context "$CONTEXT" --wait --timeout "$WAIT"
}

install_dependencies() {
  k apply -f k8s/deps/namespaces.yaml -f k8s/dev/namespace.yaml
  say "installing kube-prometheus-stack $KUBE_PROMETHEUS_STACK_VERSION"
  helm_install kube-prometheus-stack "$KUBE_PROMETHEUS_STACK_CHART" \
    "$KUBE_PROMETHEUS_STACK_VERSION" monitoring k8s/deps/values/kube-prometheus-stack.yaml
  if [[ $ENGINE == keda ]]; then
    say "installing KEDA $KEDA_VERSION"
    helm_install keda "$KEDA_CHART" "$KEDA_VERSION" keda k8s/deps/values/keda.yaml
  else
    say "installing prometheus-adapter $PROMETHEUS_ADAPTER_VERSION"
    helm_install prometheus-adapter "$PROMETHEUS_ADAPTER_CHART" "$PROMETHEUS_ADAPTER_VERSION" \
      monitoring k8s/deps/values/prometheus-adapter.yaml
  fi
  # The folders' own files only: k8s/deps/values and k8s/dev/load are not manifests
  # to apply.
  k apply -f k8s/deps/ -f k8s/dev/
  for workload in statefulset/postgresql statefulset/rabbitmq deployment/otel-collector \
    deployment/jaeger; do
    k --namespace "$DEPS_NAMESPACE" rollout status "$workload" --timeout="$WAIT"
  done
}

install_chart() {
  say "installing the chart (autoscaling.engine=$ENGINE, image.tag=$TAG)"
  helm upgrade --install "$RELEASE" charts/ordermesh --namespace "$NAMESPACE" \
    --values charts/ordermesh/examples/dev.yaml --values k8s/kind/values-e2e.yaml \
    --set "image.tag=$TAG" --set "autoscaling.engine=$ENGINE" \
    --kube-context "$CONTEXT" --wait --timeout "$WAIT"
  for service in "${SERVICES[@]}"; do
    k --namespace "$NAMESPACE" rollout status "deployment/$RELEASE-$service" --timeout="$WAIT"
  done
  k --namespace "$NAMESPACE" wait --for=condition=Ready pod \
    --selector "app.kubernetes.io/instance=$RELEASE" --timeout="$WAIT"
  if [[ $ENGINE == keda ]]; then
    k --namespace "$NAMESPACE" wait --for=condition=Ready \
      "scaledobject/$RELEASE-gateway" "scaledobject/$RELEASE-notify" --timeout="$WAIT"
  fi
}

# The suite's port-forward reaches one gateway pod; pin the gateway at one replica while
# it runs so a scale-in cannot take that pod away (and the per-replica limits hold).
pin_gateway() {
  if [[ $ENGINE == keda ]]; then
    k --namespace "$NAMESPACE" annotate --overwrite "scaledobject/$RELEASE-gateway" \
      autoscaling.keda.sh/paused-replicas=1
  else
    k --namespace "$NAMESPACE" patch "hpa/$RELEASE-gateway" --type=merge \
      --patch '{"spec": {"minReplicas": 1, "maxReplicas": 1}}'
  fi
  gateway_pinned=1
  k --namespace "$NAMESPACE" rollout status "deployment/$RELEASE-gateway" --timeout="$WAIT"
}

unpin_gateway() {
  if [[ $ENGINE == keda ]]; then
    k --namespace "$NAMESPACE" annotate "scaledobject/$RELEASE-gateway" \
      autoscaling.keda.sh/paused-replicas-
  else
    # The chart's numbers back (the same release, values and tag).
    install_chart
  fi
  gateway_pinned=0
}

port_forward_gateway() {
  mkdir -p "$ARTIFACTS"
  k --namespace "$NAMESPACE" port-forward "svc/$RELEASE-gateway" "$GATEWAY_PORT:8080" \
    >"$ARTIFACTS/port-forward.log" 2>&1 &
  port_forward_pid=$!
  local deadline=$((SECONDS + 60))
  until .venv/bin/python -c "import httpx, sys; sys.exit(httpx.get('http://127.0.0.1:$GATEWAY_PORT/readyz', timeout=2).status_code != 200)" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "the gateway's port-forward did not answer /readyz (see $ARTIFACTS/port-forward.log)"
    sleep 1
  done
  say "gateway at http://127.0.0.1:$GATEWAY_PORT"
}

run_e2e() {
  pin_gateway
  port_forward_gateway
  local environment
  environment=$(.venv/bin/python scripts/kind_e2e_env.py \
    --url "http://127.0.0.1:$GATEWAY_PORT" --engine "$ENGINE" --context "$CONTEXT")
  (
    eval "$environment"
    .venv/bin/pytest tests/e2e -q -p no:cacheprovider --junitxml="$ARTIFACTS/e2e-junit.xml"
  )
  kill "$port_forward_pid" 2>/dev/null || true
  port_forward_pid=""
  unpin_gateway
}

dump_diagnostics() {
  mkdir -p "$ARTIFACTS"
  say "collecting diagnostics in $ARTIFACTS"
  k get events --all-namespaces --sort-by=.lastTimestamp >"$ARTIFACTS/events.txt" 2>&1 || true
  k get all,pvc,scaledobjects,hpa --all-namespaces -o wide >"$ARTIFACTS/objects.txt" 2>&1 || true
  local namespace pod
  for namespace in "$NAMESPACE" "$DEPS_NAMESPACE" monitoring keda; do
    k --namespace "$namespace" describe pods >"$ARTIFACTS/describe-$namespace.txt" 2>&1 || true
    for pod in $(k --namespace "$namespace" get pods -o name 2>/dev/null); do
      k --namespace "$namespace" logs "$pod" --all-containers --prefix --timestamps \
        >"$ARTIFACTS/logs-$namespace-${pod#pod/}.txt" 2>&1 || true
      k --namespace "$namespace" logs "$pod" --all-containers --prefix --previous \
        >>"$ARTIFACTS/logs-$namespace-${pod#pod/}.txt" 2>/dev/null || true
    done
  done
  kind export logs --name "$CLUSTER" "$ARTIFACTS/kind" >/dev/null 2>&1 || true
  echo "--- events (newest last) ---"
  tail -n 60 "$ARTIFACTS/events.txt" || true
}

finish() {
  local status=$?
  [[ -n $port_forward_pid ]] && kill "$port_forward_pid" 2>/dev/null
  if ((status != 0)); then
    say "FAILED (exit $status)"
    dump_diagnostics
  fi
  if ((gateway_pinned)) && ((status != 0)) && [[ $KEEP_CLUSTER == 1 ]]; then
    say "the gateway's autoscaler is still paused at 1 replica"
  fi
  if ((created_cluster)) && [[ $KEEP_CLUSTER != 1 ]]; then
    say "deleting the kind cluster '$CLUSTER' (KEEP_CLUSTER=1 keeps it)"
    kind delete cluster --name "$CLUSTER" || true
  fi
  exit "$status"
}

main() {
  check_prerequisites
  trap finish EXIT
  create_cluster
  build_images
  install_dependencies
  install_chart
  run_e2e
  if [[ $SKIP_AUTOSCALING != 1 ]]; then
    CONTEXT=$CONTEXT AUTOSCALING_ENGINE=$ENGINE scripts/kind-autoscaling-check.sh
  fi
  say "passed"
}

main "$@"
