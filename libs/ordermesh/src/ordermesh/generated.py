"""Files the dev tool generates and commits: write them, or say which have drifted.

Each generator (dashboards, the chart's copies, k8s/manifests) says what its files
must hold; this module compares and writes. `present` lists the files a generator
owns now, so that one whose source is gone is reported, and removed, too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path


def stale(expected: Mapping[Path, bytes], present: Iterable[Path] = ()) -> list[Path]:
    """Files missing or differing from `expected`, then those of `present` it lacks."""
    differing = [path for path, data in expected.items() if _differs(path, data)]
    return differing + sorted(path for path in present if path not in expected)


def write(expected: Mapping[Path, bytes], present: Iterable[Path] = ()) -> list[Path]:
    """Write the files that differ, remove the leftovers; returns every path changed."""
    changed = stale(expected, present)
    for path in changed:
        if path in expected:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(expected[path])
        else:
            path.unlink()
    return changed


def _differs(path: Path, data: bytes) -> bool:
    return not path.exists() or path.read_bytes() != data
