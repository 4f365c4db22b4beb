"""Where things live in the repository checkout the dev tool runs from."""

from __future__ import annotations

from pathlib import Path

# libs/ordermesh/src/ordermesh/paths.py -> the repository root
REPO_ROOT = Path(__file__).resolve().parents[4]
STATE_DIR = REPO_ROOT / ".state"
# The scrape config `ordermesh up` gives Prometheus (a copy, with the stack's targets).
PROMETHEUS_CONFIG = REPO_ROOT / "observability" / "prometheus" / "prometheus.yml"
