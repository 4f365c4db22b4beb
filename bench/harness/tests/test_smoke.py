"""The harness end to end with tiny settings, as CI runs it: every implementation, four
scenarios (read, create, export, size) and the event probe, one level, one short round.

It proves the harness works (stacks start, seeding, wrk and its Lua, the drains, the
export and COPY, the event probe, JSON, Markdown, PNGs); it measures nothing worth
keeping. Never skipped: a missing tool fails it (scripts/ensure-prereqs.sh installs them).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.harness.plan import IMPLEMENTATIONS
from bench.harness.runner import SIZE_BLOCKS

RUN = Path(__file__).resolve().parents[2] / "run.py"
BUDGET_SECONDS = 120
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(BUDGET_SECONDS + 30)
def test_harness_end_to_end(tmp_path: Path) -> None:
    for tool in ("wrk", "curl", "psql", "prometheus", "rabbitmqctl"):
        assert shutil.which(tool), f"{tool} is missing: run scripts/ensure-prereqs.sh"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(RUN), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=BUDGET_SECONDS,
        check=False,
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-6000:]}"
    assert elapsed < BUDGET_SECONDS

    doc = json.loads((tmp_path / "results.json").read_text())
    for scenario in ("read", "create"):
        for name in IMPLEMENTATIONS:
            cells = doc["results"][scenario][name]
            assert cells, f"{scenario}/{name} has no result"
            for cell in cells.values():
                assert cell["ok_per_second"]["median"] > 0, f"{scenario}/{name}: no 2xx"
                assert cell["errors"] == 0, f"{scenario}/{name}: {cell['errors']} errors"
    export = doc["export_results"]
    assert export["copy_seconds"]["median"] > 0
    for name in IMPLEMENTATIONS:
        assert export[name]["rows_per_second"]["median"] > 0
        assert export[name]["rows_read_back"] == export["rows"], name
    assert doc["events"]["recorded"] == doc["events"]["created"] > 0
    floor = doc["grpc_floor"]["summary"]
    assert all(floor[key]["median"] > 0 for key in ("client_ms_per_call", "server_ms_per_call"))
    with_data = [n for n in IMPLEMENTATIONS if n != "ceiling"]
    raw = {(r["scenario"], r["implementation"]) for r in doc["runs"]}
    assert raw == {(s, n) for s in ("read", "create") for n in IMPLEMENTATIONS} | {
        (s, n) for s in ("size_small", "size_large") for n in with_data
    }
    # Each table size in SIZE_BLOCKS blocks, in turn (one round each for the smoke's one
    # round): the table went back to the readers' orders between.
    for size in ("size_small", "size_large"):
        rounds = sorted(r["round"] for r in doc["runs"] if r["scenario"] == size)
        assert rounds == sorted(list(range(SIZE_BLOCKS)) * len(with_data)), size
    assert doc["data"]["orders_in_table"] == {"small": 400, "large": 2_400}
    assert len(doc["data"]["seeding"]["shrink_seconds"]) == SIZE_BLOCKS - 1

    names = {t["name"] for t in doc["targets"]}
    assert {"read by id vs default_async, req/s", "export vs COPY", "event latency"} <= names
    assert all(t["met"] in (True, False, None) for t in doc["targets"])
    markdown = (tmp_path / "results.md").read_text()
    assert "## Targets" in markdown
    assert "## read:" in markdown
    assert "## export:" in markdown
    assert "## The gRPC hop alone" in markdown
    for plot in ("read.png", "create.png", "export.png"):
        data = (tmp_path / plot).read_bytes()
        assert data.startswith(PNG), plot
        assert len(data) > 10_000, plot
