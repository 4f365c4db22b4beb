"""Regenerates the exact pins (`constraint-dependencies`) in the root pyproject.toml.

uv.lock stays out of git because it records download addresses, so these pins are
what make a fresh clone install the same versions. They come from uv's resolution of
the whole workspace (every platform, every dependency group), as `name==version`.
To move one pin: delete its line, run `uv lock --upgrade-package NAME`, then `make pins`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from ordermesh.paths import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"
WORKSPACE_MEMBERS = frozenset(
    {"servicekit", "contracts", "orders", "ordermesh", "ordermesh-workspace"}
)
_LIST = re.compile(r"^constraint-dependencies = \[\n.*?^\]", re.MULTILINE | re.DOTALL)
_EXPORT = (
    "export",
    "--all-packages",
    "--all-groups",
    "--no-emit-workspace",
    "--no-hashes",
    "--no-header",
    "--no-annotate",
    "--format",
    "requirements-txt",
)


def find_uv(explicit: str | None = None) -> str:
    """The uv to run: `explicit`, $UV, uv on PATH, or the one `make` bootstraps in .tools/."""
    bootstrapped = REPO_ROOT / ".tools" / "bin" / "uv"
    for candidate in (explicit, os.environ.get("UV"), shutil.which("uv")):
        if candidate:
            return candidate
    if bootstrapped.exists():
        return str(bootstrapped)
    raise FileNotFoundError("uv not found: run `make pins` (it installs uv into .tools/)")


def resolved_pins(uv: str) -> list[str]:
    """`name==version` for every third-party package of the workspace's resolution."""
    exported = subprocess.run(  # noqa: S603 (our own uv, fixed arguments)
        [uv, *_EXPORT], cwd=REPO_ROOT, check=True, capture_output=True, text=True
    ).stdout
    return parse_export(exported)


def parse_export(text: str) -> list[str]:
    """Pins from requirements-txt lines; markers are kept only where versions differ by them."""
    lines: dict[str, list[tuple[str, str]]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "-")):
            continue
        requirement = line.split(";", 1)[0].strip()
        name, exact, version = requirement.partition("==")
        if not exact:
            raise ValueError(f"cannot pin {line!r}: only name==version requirements can be pinned")
        name = normalize(name)
        if name not in WORKSPACE_MEMBERS:
            lines.setdefault(name, []).append((version.strip(), line))
    pins = []
    for name in sorted(lines):
        versions = {version for version, _ in lines[name]}
        if len(versions) == 1:
            pins.append(f"{name}=={versions.pop()}")
        else:
            pins += sorted(line for _, line in lines[name])
    return pins


def write_pins(pins: list[str], pyproject: Path = PYPROJECT) -> bool:
    """Replace the `constraint-dependencies` list in `pyproject`; True if it changed."""
    text = pyproject.read_text()
    block = "constraint-dependencies = [\n" + "".join(f'  "{pin}",\n' for pin in pins) + "]"
    updated, count = _LIST.subn(lambda _: block, text)
    if count != 1:
        raise ValueError(f"{pyproject} has no `constraint-dependencies = [` ... `]` list")
    if updated == text:
        return False
    pyproject.write_text(updated)
    return True


def normalize(name: str) -> str:
    """The PEP 503 normal form of a distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()
