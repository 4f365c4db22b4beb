#!/usr/bin/env bash
# The autoscaling check on the kind cluster: load, scale out, scale back in, for the
# gateway (its request rate) and for notify (its queue backlog). Run by
# scripts/e2e-kind.sh after the e2e suite, and by Tilt's autoscaling-check resource.
#
# Expects the chart installed with examples/dev.yaml: gateway and notify between 1 and 4
# replicas, 20 requests/s per gateway pod, 100 queued messages per notify replica,
# 30 s scale-down windows. The load runs in the cluster (k8s/dev/load/*-job.yaml,
# scripts/kind_load.py) in the image the gateway runs, so it needs nothing pulled.
#
#   AUTOSCALING_ENGINE  keda (default) or hpa, as the chart was installed
#   CONTEXT             kubectl context (default kind-ordermesh)
#   SCALE_OUT_SECONDS   how long scaling out may take (default 300)
#   SCALE_IN_SECONDS    how long scaling back in may take (default 600)
set -euo pipefail

cd "$(dirname "$0")/.."

CONTEXT=${CONTEXT:-kind-ordermesh}
ENGINE=${AUTOSCALING_ENGINE:-keda}
SCALE_OUT_SECONDS=${SCALE_OUT_SECONDS:-300}
SCALE_IN_SECONDS=${SCALE_IN_SECONDS:-600}
NAMESPACE=ordermesh
RELEASE=ordermesh
PAUSED=autoscaling.keda.sh/paused-replicas

say() { echo "autoscaling-check: $*"; }
k() { kubectl --context "$CONTEXT" --namespace "$NAMESPACE" "$@"; }

replicas() { k get deployment "$RELEASE-$1" -o jsonpath='{.spec.replicas}'; }

min_replicas() {
  if [[ $ENGINE == keda ]]; then
    k get scaledobject "$RELEASE-$1" -o jsonpath='{.spec.minReplicaCount}'
  else
    k get hpa "$RELEASE-$1" -o jsonpath='{.spec.minReplicas}'
  fi
}

above_min() { (($(replicas "$1") > $(min_replicas "$1"))); }
at_min() { (($(replicas "$1") == $(min_replicas "$1"))); }

status() {
  k get deployments,hpa -o wide || true
  [[ $ENGINE == keda ]] && { k get scaledobjects -o wide || true; }
  k describe hpa || true
}

# wait_until DESCRIPTION SECONDS COMMAND...: polls COMMAND every 5 s.
wait_until() {
  local what=$1 seconds=$2
  shift 2
  local started=$SECONDS
  until "$@"; do
    if ((SECONDS - started >= seconds)); then
      say "FAILED: $what within ${seconds}s"
      status
      return 1
    fi
    sleep 5
  done
  say "$what after $((SECONDS - started))s ($(replicas "${@: -1}") replicas)"
}

# start_load reads|orders: the Job of k8s/dev/load/<kind>-job.yaml, in the gateway's image.
start_load() {
  local image
  image=$(k get deployment "$RELEASE-gateway" -o jsonpath='{.spec.template.spec.containers[0].image}')
  k create configmap ordermesh-load --from-file=scripts/kind_load.py --dry-run=client -o yaml |
    k apply -f -
  k delete job "ordermesh-load-$1" --ignore-not-found --wait
  sed "s|image: ordermesh/gateway:dev|image: $image|" "k8s/dev/load/$1-job.yaml" | k apply -f -
}

# job_done NAME [SERVICE]: the load Job has finished; fails the check if it failed.
job_done() {
  local succeeded failed
  succeeded=$(k get job "ordermesh-load-$1" -o jsonpath='{.status.succeeded}')
  failed=$(k get job "ordermesh-load-$1" -o jsonpath='{.status.failed}')
  if ((${failed:-0} > 0)); then
    say "FAILED: the load Job ordermesh-load-$1 failed"
    k logs "job/ordermesh-load-$1" --tail=20 || true
    exit 1
  fi
  ((${succeeded:-0} > 0))
}

stop_load() {
  k logs "job/ordermesh-load-$1" --tail=5 || true
  k delete job "ordermesh-load-$1" --ignore-not-found --wait
}

notify_paused=0

pause_notify() {
  notify_paused=1
  if [[ $ENGINE == keda ]]; then
    k annotate --overwrite "scaledobject/$RELEASE-notify" "$PAUSED=0"
  fi
  # A plain HPA leaves a Deployment scaled to 0 alone.
  k scale "deployment/$RELEASE-notify" --replicas=0
}

resume_notify() {
  if [[ $ENGINE == keda ]]; then
    k annotate "scaledobject/$RELEASE-notify" "$PAUSED-"
  fi
  k scale "deployment/$RELEASE-notify" --replicas=1
  notify_paused=0
}

cleanup() {
  stop_load reads >/dev/null 2>&1 || true
  stop_load orders >/dev/null 2>&1 || true
  if ((notify_paused)); then resume_notify || true; fi
}

check_gateway() {
  say "gateway: waiting for the minimum, then ~150 requests/s"
  wait_until "gateway at its minimum" "$SCALE_IN_SECONDS" at_min gateway
  start_load reads
  wait_until "gateway scaled out" "$SCALE_OUT_SECONDS" above_min gateway
  stop_load reads
  wait_until "gateway back at its minimum" "$SCALE_IN_SECONDS" at_min gateway
}

check_notify() {
  say "notify: paused while 5,000 orders queue up, then resumed"
  wait_until "notify at its minimum" "$SCALE_IN_SECONDS" at_min notify
  pause_notify
  start_load orders
  wait_until "5,000 orders created" 600 job_done orders notify
  stop_load orders
  resume_notify
  wait_until "notify scaled out on its backlog" "$SCALE_OUT_SECONDS" above_min notify
  wait_until "notify back at its minimum" "$SCALE_IN_SECONDS" at_min notify
}

[[ $ENGINE == keda || $ENGINE == hpa ]] || {
  echo "autoscaling-check: AUTOSCALING_ENGINE must be keda or hpa, not $ENGINE" >&2
  exit 2
}
# Whatever happens, leave no load running and notify to its autoscaler.
trap cleanup EXIT
check_gateway
check_notify
say "passed: gateway and notify scaled out under load and back in without it"
