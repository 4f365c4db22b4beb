# Ordermesh developer commands. `make up` and `make test` work on a fresh clone: they
# install uv into .tools/ when it is not on PATH, then create .venv with `uv sync`.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

UV_VERSION := 0.13.8
# Use the machine's python3; never let uv download an interpreter.
export UV_PYTHON_DOWNLOADS := never
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
VENV_BIN := .venv/bin
# Extra flags for `ordermesh up`, e.g. make up ARGS="--pg-port 55433"
ARGS ?=

.PHONY: help up test prereqs deploy-tools sync pins proto fmt

help:
	@echo "make up     run the local stack (embedded PostgreSQL, services, Prometheus) until Ctrl-C"
	@echo "make test   ruff, ruff format --check, mypy (strict), pytest"
	@echo "make prereqs  Prometheus, wrk, shellcheck, RabbitMQ's Prometheus plugin (make up and make test run it)"
	@echo "make deploy-tools  checkov in .tools/checkov (make test runs it)"
	@echo "make e2e-kind  kind cluster, images, dependencies, chart, e2e suite, autoscaling check (needs Docker)"
	@echo "make kind-up / kind-down  create or delete the kind cluster (docs/local-cluster.md)"
	@echo "make fmt    format and autofix with ruff"
	@echo "make proto  regenerate the gRPC code in libs/contracts from proto/"
	@echo "make pins   rewrite the exact pins (constraint-dependencies) in pyproject.toml"

up: sync prereqs
	$(VENV_BIN)/ordermesh up $(ARGS)

test: sync prereqs deploy-tools
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/ruff format --check .
	$(VENV_BIN)/mypy
	$(VENV_BIN)/pytest

fmt: sync
	$(VENV_BIN)/ruff format .
	$(VENV_BIN)/ruff check --fix .

proto: sync
	$(VENV_BIN)/ordermesh proto

pins: sync
	$(VENV_BIN)/ordermesh pins --uv "$(UV)"
	$(UV) sync --all-packages --python python3

# The benchmark harness (bench/README.md): the full matrix into bench/results/<date>/harness/
# (options with ARGS, e.g. ARGS="--scenarios read --rounds 1"), or CI's quick end-to-end check.
.PHONY: bench bench-smoke
bench: sync prereqs
	$(VENV_BIN)/python bench/run.py $(ARGS)

bench-smoke: sync prereqs
	$(VENV_BIN)/python bench/run.py --smoke $(ARGS)

# Machine packages the stack runs (Prometheus, the RabbitMQ Prometheus plugin): installs
# or enables what is missing, and says so; a no-op when all is there.
prereqs:
	scripts/ensure-prereqs.sh

# checkov (policy checks of the rendered chart, tests/deploy) pins packages that clash
# with the services' (packaging<24, for one), so it gets a virtualenv of its own under
# .tools/, pinned by tools/checkov-requirements.txt (`uv pip compile` of checkov==3.3.30).
CHECKOV := .tools/checkov/bin/checkov
deploy-tools: $(CHECKOV)

$(CHECKOV): tools/checkov-requirements.txt | $(UV)
	$(UV) venv --no-config --allow-existing --python python3 .tools/checkov
	$(UV) pip install --no-config --python .tools/checkov/bin/python -r tools/checkov-requirements.txt
	touch $@

# uv.lock is not committed (it records download addresses); the pins in pyproject.toml
# keep the resolution repeatable.
sync: $(UV)
	$(UV) sync --all-packages --python python3

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --disable-pip-version-check --quiet uv==$(UV_VERSION)

# The kind e2e run (docs/local-cluster.md; needs docker, kind, kubectl and helm): a
# cluster, the images, the dependencies and the chart, then tests/e2e against the
# gateway and the autoscaling check. KEEP_CLUSTER=1 keeps the cluster afterwards.
.PHONY: e2e-kind kind-up kind-down
e2e-kind: sync
	scripts/e2e-kind.sh

# The development cluster alone, for `tilt up`.
kind-up:
	kind create cluster --config k8s/kind/cluster.yaml

kind-down:
	kind delete cluster --name ordermesh
