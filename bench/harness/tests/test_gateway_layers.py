"""bench/gateway_layers.py runs end to end with tiny settings: every variant's process
answers every request with 200, and the whole app costs more than its handler alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "gateway_layers.py"


@pytest.mark.timeout(180)
def test_the_layer_benchmark_measures_each_variant(tmp_path: Path) -> None:
    out = tmp_path / "layers.json"
    variants = ["handler", "fastapi", "defaults"]
    args = ["--rounds=2", "--requests=640", "--variants", *variants, f"--out={out}"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=170
    )
    assert result.returncode == 0, result.stdout + result.stderr
    layers = json.loads(out.read_text())
    assert list(layers["summary"]) == variants
    for name in variants:
        runs = layers["runs"][name]
        assert [r["requests"] for r in runs] == [640, 640], name
        assert all(r["us_per_request"] > 0 for r in runs), name
        assert name in result.stdout
    # A wide gap (about 15x): the handler alone does a small part of the app's work.
    assert layers["summary"]["handler"]["max"] < layers["summary"]["defaults"]["min"]
