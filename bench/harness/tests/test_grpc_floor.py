"""bench/grpc_floor.py runs end to end with tiny settings (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "grpc_floor.py"


@pytest.mark.timeout(120)
def test_the_grpc_floor_benchmark_measures_both_processes(tmp_path: Path) -> None:
    out = tmp_path / "floor.json"
    args = ["--rounds=2", "--duration=0.3", "--concurrency=4", f"--out={out}"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=100
    )
    assert result.returncode == 0, result.stdout + result.stderr
    floor = json.loads(out.read_text())
    assert len(floor["rounds"]) == 2
    for key in ("calls_per_s", "client_ms_per_call", "server_ms_per_call"):
        value = floor["summary"][key]
        assert 0 < value["min"] <= value["median"] <= value["max"], (key, value)
        assert key in result.stdout
