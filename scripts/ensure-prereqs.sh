#!/usr/bin/env bash
# Machine prerequisites of `make up` and `make test` beyond the virtualenv:
#
# - Prometheus (the Debian package's /usr/bin/prometheus and promtool), which the local
#   stack runs as a child process. Installed with apt-get when missing and we are root;
#   the package's own service is never left running (the stack runs its own).
# - RabbitMQ's rabbitmq_prometheus plugin (127.0.0.1:15692), which Prometheus scrapes
#   for the queue backlog. Enabled when a local broker runs and the port is silent.
# - wrk (the Debian package), the load generator of the autoscaling signal test and the
#   benchmarks, and shellcheck, which tests/deploy runs on the kind scripts. Installed
#   with apt-get when missing and we are root.
#
# Idempotent, and quick when everything is there: two port probes and four lookups.
set -euo pipefail

RABBITMQ_METRICS_PORT=15692
AMQP_PORT=5672

say() { echo "prereqs: $*"; }
fail() {
  echo "prereqs: ERROR: $*" >&2
  exit 1
}

# Does something accept TCP connections on 127.0.0.1:$1? (bash's /dev/tcp, no tools needed)
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

ensure_prometheus() {
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    return
  fi
  if [[ $(id -u) -ne 0 ]]; then
    fail "Prometheus is missing (no prometheus or promtool on PATH) and this is not root:" \
      "run \`sudo apt-get install --no-install-recommends prometheus\`, or put Prometheus 2.x" \
      "on PATH, then try again."
  fi
  command -v apt-get >/dev/null ||
    fail "Prometheus is missing and there is no apt-get: install Prometheus 2.x so that" \
      "prometheus and promtool are on PATH."
  say "installing Prometheus (apt-get install prometheus)..."
  # The package would start its own service on :9090. A policy-rc.d that says "no" (101)
  # keeps invoke-rc.d and deb-systemd-invoke from starting it during the install.
  local policy=/usr/sbin/policy-rc.d added_policy=""
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    added_policy=1
  fi
  local status=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus
  } || status=$?
  if [[ -n $added_policy ]]; then rm -f "$policy"; fi
  [[ $status -eq 0 ]] || fail "apt-get could not install prometheus (exit code $status): see above."
  # Under systemd the unit is enabled on install: make sure it neither runs nor comes back.
  # Without systemd, an existing policy-rc.d may have let the init script start it.
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  elif command -v service >/dev/null; then
    service prometheus stop >/dev/null 2>&1 || true
  fi
  { command -v prometheus && command -v promtool; } >/dev/null ||
    fail "the prometheus package is installed but prometheus/promtool are not on PATH."
  say "installed $(prometheus --version 2>&1 | head -n 1)"
}

# ensure_apt_tool <command> <Debian package> <why>: installs the package when the
# command is missing and we are root; otherwise says what to run.
ensure_apt_tool() {
  local tool=$1 package=$2
  command -v "$tool" >/dev/null && return
  [[ $(id -u) -eq 0 ]] ||
    fail "$tool is missing and this is not root: run \`sudo apt-get install $package\`, then try again."
  command -v apt-get >/dev/null ||
    fail "$tool is missing and there is no apt-get: install $package so that $tool is on PATH."
  say "installing $tool (apt-get install $package)..."
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$package"
  } || fail "apt-get could not install $package: see above."
  command -v "$tool" >/dev/null || fail "the $package package is installed but $tool is not on PATH."
  say "installed $tool: $("$tool" --version 2>&1 | head -n 2 | tr '\n' ' ')"
}

ensure_rabbitmq_plugin() {
  if port_open "$RABBITMQ_METRICS_PORT"; then
    plugin="rabbitmq_prometheus on :$RABBITMQ_METRICS_PORT"
    return
  fi
  if ! port_open "$AMQP_PORT"; then
    # No local broker: `ordermesh up` says how to get one (or AMQP_URL points elsewhere).
    say "no RabbitMQ on 127.0.0.1:$AMQP_PORT: not enabling rabbitmq_prometheus."
    plugin="no local RabbitMQ"
    return
  fi
  command -v rabbitmq-plugins >/dev/null ||
    fail "RabbitMQ answers on :$AMQP_PORT but there is no rabbitmq-plugins to enable" \
      "rabbitmq_prometheus: enable the plugin on that broker (port $RABBITMQ_METRICS_PORT)."
  say "enabling RabbitMQ's rabbitmq_prometheus plugin (port $RABBITMQ_METRICS_PORT)..."
  rabbitmq-plugins enable rabbitmq_prometheus ||
    fail "\`rabbitmq-plugins enable rabbitmq_prometheus\` failed (see above); as root it" \
      "needs the broker's Erlang cookie: try \`sudo rabbitmq-plugins enable rabbitmq_prometheus\`."
  local waited=0
  until port_open "$RABBITMQ_METRICS_PORT"; do
    ((waited++ < 30)) ||
      fail "rabbitmq_prometheus is enabled but 127.0.0.1:$RABBITMQ_METRICS_PORT does not answer."
    sleep 1
  done
  say "rabbitmq_prometheus answers on 127.0.0.1:$RABBITMQ_METRICS_PORT."
  plugin="rabbitmq_prometheus on :$RABBITMQ_METRICS_PORT"
}

plugin=""
ensure_prometheus
ensure_apt_tool wrk wrk
ensure_apt_tool shellcheck shellcheck
ensure_rabbitmq_plugin
say "ok: $(command -v prometheus), $(command -v promtool), $(command -v wrk), $(command -v shellcheck); $plugin"
