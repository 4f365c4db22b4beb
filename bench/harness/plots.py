"""PNG plots: per wrk scenario, 2xx/s, p50 and p99 against connections, a line per
implementation; and the export's seconds beside COPY's."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

from bench.harness.plan import IMPLEMENTATIONS, WRK_SCENARIOS
from bench.harness.scenarios import TITLES

PANELS = (("ok_per_second", "2xx per second"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"))


def draw(doc: dict[str, Any], out: Path) -> list[Path]:
    written = [
        _scenario(scenario, doc["results"][scenario], out)
        for scenario in WRK_SCENARIOS
        if scenario in doc["results"]
    ]
    if doc.get("export_results"):
        written.append(_export(doc["export_results"], out))
    return written


def _scenario(scenario: str, by_name: dict[str, dict[str, Any]], out: Path) -> Path:
    figure, axes = plt.subplots(1, len(PANELS), figsize=(15, 4.5))
    levels: set[int] = set()
    for name in IMPLEMENTATIONS:
        if name not in by_name:
            continue
        points = sorted((int(c), cell) for c, cell in by_name[name].items())
        levels |= {c for c, _ in points}
        for ax, (metric, _) in zip(axes, PANELS, strict=True):
            xs = [c for c, _ in points]
            # A median of 0 (no 2xx answer in most rounds) has no place on a log scale:
            # it is left out (a gap in the line), and a minimum of 0 is drawn at the axis.
            ys = [cell[metric]["median"] or math.nan for _, cell in points]
            cells = [cell[metric] for _, cell in points]
            low = [y - (c["min"] or y / 1e3) for y, c in zip(ys, cells, strict=True)]
            high = [c["max"] - y for y, c in zip(ys, cells, strict=True)]
            ax.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, label=name)
    for ax, (_, label) in zip(axes, PANELS, strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(levels), [str(c) for c in sorted(levels)])
        ax.set_xlabel("connections")
        ax.set_ylabel(label)
        ax.set_yscale("log")  # the ceiling is orders of magnitude above the rest
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    figure.suptitle(
        f"{scenario}: {TITLES[scenario]} (median, bars min-max; no point: no 2xx answers)"
    )
    figure.tight_layout()
    path = out / f"{scenario}.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _export(found: dict[str, Any], out: Path) -> Path:
    names = [n for n in IMPLEMENTATIONS if n in found]
    seconds = [found[n]["seconds"]["median"] for n in names] + [found["copy_seconds"]["median"]]
    figure, ax = plt.subplots(figsize=(7, 4))
    colors = [f"C{IMPLEMENTATIONS.index(n)}" for n in names] + ["C7"]  # as in the line plots
    ax.bar([*names, "psql COPY"], seconds, color=colors)
    ax.set_ylabel("seconds (median)")
    ax.set_title(f"export of {found['rows']:,} orders")
    ax.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    path = out / "export.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
