"""The gRPC load benchmark runs end to end (tiny settings; no timing is asserted)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from orders.server import OrdersRuntime

BENCH = Path(__file__).resolve().parents[3] / "bench" / "orders_grpc.py"


async def test_benchmark_harness_runs_end_to_end(
    runtime: OrdersRuntime, db_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "result.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(BENCH),
        f"--target=127.0.0.1:{runtime.grpc_port}",
        f"--database-url={db_url}",
        "--duration=0.3",
        "--rounds=1",
        "--concurrency=4",
        "--export-rows=300",
        f"--out={out}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, output.decode()
    result = json.loads(out.read_text())
    for rpc in ("GetOrder", "CreateOrder"):
        assert result["load"][rpc]["calls_per_s"]["median"] > 0
        assert result["load"][rpc]["errors"]["max"] == 0
    assert result["export"]["rows"] == 300
    assert b"ExportOrders of 300 orders" in output
