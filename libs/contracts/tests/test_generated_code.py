"""The committed gRPC code must be exactly what protoc makes of proto/ today."""

from __future__ import annotations

from pathlib import Path

from ordermesh.codegen import CONTRACTS_ROOT, generate


def test_generated_code_matches_the_proto(tmp_path: Path) -> None:
    fresh = generate(tmp_path)
    assert fresh, "protoc produced nothing"
    stale = []
    for path in fresh:
        committed = CONTRACTS_ROOT / path.relative_to(tmp_path)
        if not committed.exists() or committed.read_text() != path.read_text():
            stale.append(str(committed.relative_to(CONTRACTS_ROOT)))
    assert not stale, f"out of date with proto/: {stale}; run `make proto` and commit"


def test_generated_imports_live_under_contracts() -> None:
    grpc_module = (CONTRACTS_ROOT / "orders" / "v1" / "orders_pb2_grpc.py").read_text()
    assert "from contracts.orders.v1 import orders_pb2" in grpc_module
