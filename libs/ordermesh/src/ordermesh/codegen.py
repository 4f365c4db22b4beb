"""Generates the Python code for proto/ into libs/contracts (the committed copy).

protoc writes absolute imports from the proto path (`from orders.v1 import ...`),
which would collide with the `orders` service package, so generated imports are
rewritten to live under `contracts.`.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from ordermesh.paths import REPO_ROOT

PROTO_ROOT = REPO_ROOT / "proto"
CONTRACTS_ROOT = REPO_ROOT / "libs" / "contracts" / "src" / "contracts"
_IMPORT = re.compile(r"^(from|import) (orders\.v1)\b", re.MULTILINE)


def proto_files() -> list[Path]:
    """Every .proto file under proto/, relative to it."""
    return sorted(p.relative_to(PROTO_ROOT) for p in PROTO_ROOT.rglob("*.proto"))


def generate(out_root: Path) -> list[Path]:
    """Run protoc (with mypy stubs) for every proto file; return the files written."""
    from google.rpc import status_pb2
    from grpc_tools import protoc  # dev-only dependency: import on use

    with tempfile.TemporaryDirectory() as raw:
        raw_root = Path(raw)
        include = Path(protoc.__file__).parent / "_proto"
        # google/rpc/status.proto ships with googleapis-common-protos (whose
        # google.rpc.status_pb2 the generated code imports).
        googleapis = Path(status_pb2.__file__).parents[2]
        scripts = Path(sys.executable).parent  # mypy-protobuf's plugins sit beside python
        args = [
            "protoc",
            f"--plugin=protoc-gen-mypy={scripts / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={scripts / 'protoc-gen-mypy_grpc'}",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"-I{googleapis}",
            f"--python_out={raw_root}",
            f"--grpc_python_out={raw_root}",
            f"--mypy_out={raw_root}",
            # The services are grpc.aio only: async signatures in the stubs.
            f"--mypy_grpc_out=only_async:{raw_root}",
            *(str(PROTO_ROOT / p) for p in proto_files()),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed: " + " ".join(args))
        written = []
        for source in sorted(raw_root.rglob("*")):
            if source.is_dir():
                continue
            target = out_root / source.relative_to(raw_root)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = _IMPORT.sub(r"\1 contracts.\2", source.read_text())
            target.write_text(text)
            written.append(target)
        for package_dir in {p.parent for p in written}:
            _ensure_init(package_dir, stop_at=out_root)
        return written


def _ensure_init(directory: Path, *, stop_at: Path) -> None:
    while directory != stop_at and stop_at in directory.parents:
        (directory / "__init__.py").touch()
        directory = directory.parent
