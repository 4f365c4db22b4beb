"""The issue's targets, each evaluated on one run's numbers: met, not met, or not measured.

Ratios compare implementations within the same run. Throughput is 2xx answers per
second (wrk's requests/s would count Ordermesh's 503 sheds as work done). Where the
plan lacks a level a target names (256, 64, 1024 connections), the nearest measured
one stands in and the row says which; a target whose inputs were not measured at all
is reported as such, never as met.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

OM: Final = "ordermesh"
Target = dict[str, Any]


def evaluate(doc: dict[str, Any]) -> list[Target]:
    results = doc["results"]
    levels = sorted(int(c) for c in doc["plan"]["connections"])
    found: list[Target] = []
    found += _read(results, _nearest(levels, 256))
    found += _collapse(results, levels)
    found.append(_errors(doc))
    found += _create(doc, _nearest(levels, 256))
    found += _export(doc)
    found.append(_size(results))
    found += _rss(results, _nearest(levels, 1024))
    return found


def _nearest(levels: list[int], wanted: int) -> int:
    return min(levels, key=lambda level: (abs(level - wanted), -level))


def _at(note: int, wanted: int) -> str:
    return "" if note == wanted else f" (at {note}: {wanted} not measured)"


def _value(
    results: dict[str, Any], scenario: str, name: str, level: int, metric: str
) -> float | None:
    cell = results.get(scenario, {}).get(name, {}).get(str(level))
    return None if cell is None else float(cell[metric]["median"])


def _target(name: str, goal: str, measured: str, met: bool | None, **values: Any) -> Target:
    return {"name": name, "goal": goal, "measured": measured, "met": met, "values": values}


def _ratio(
    name: str,
    goal: str,
    numerator: float | None,
    denominator: float | None,
    passes: Callable[[float], bool],
    describe: Callable[[float, float, float], str],
) -> Target:
    if numerator is None or denominator is None or denominator == 0:
        return _target(name, goal, "not measured", None)
    ratio = numerator / denominator
    return _target(
        name,
        goal,
        describe(ratio, numerator, denominator),
        passes(ratio),
        ratio=ratio,
        numerator=numerator,
        denominator=denominator,
    )


def _read(results: dict[str, Any], level: int) -> list[Target]:
    def rps(name: str) -> float | None:
        return _value(results, "read", name, level, "ok_per_second")

    def p99(name: str) -> float | None:
        return _value(results, "read", name, level, "p99_ms")

    note = _at(level, 256)

    def times(other: str) -> Callable[[float, float, float], str]:
        return lambda r, a, b: f"{r:.2f}x ({a:,.0f} vs {b:,.0f} 2xx/s){note}"

    return [
        _ratio(
            "read by id vs default_async, req/s",
            "≥ 3x at 256",
            rps(OM),
            rps("default_async"),
            lambda r: r >= 3,
            times("default_async"),
        ),
        _ratio(
            "read by id vs sync, req/s",
            "≥ 5x at 256",
            rps(OM),
            rps("sync"),
            lambda r: r >= 5,
            times("sync"),
        ),
        _ratio(
            "read by id p99 vs default_async",
            "≤ ⅓ at 256",
            p99(OM),
            p99("default_async"),
            lambda r: r <= 1 / 3,
            lambda r, a, b: f"{r:.2f} ({a:.1f} vs {b:.1f} ms){note}",
        ),
        _ratio(
            "read by id vs ceiling, req/s",
            "≥ 15% at 256",
            rps(OM),
            rps("ceiling"),
            lambda r: r >= 0.15,
            lambda r, a, b: f"{100 * r:.1f}% ({a:,.0f} vs {b:,.0f} 2xx/s){note}",
        ),
    ]


def _collapse(results: dict[str, Any], levels: list[int]) -> list[Target]:
    low, high = _nearest(levels, 64), _nearest(levels, 1024)
    found = []
    for scenario in ("read", "list", "summary", "create"):
        if scenario not in results:
            continue
        name, goal = f"no collapse: {scenario}", "2xx/s at 1024 ≥ 90% of at 64"
        if low == high:
            found.append(_target(name, goal, f"not measured (one level, {low})", None))
            continue
        found.append(
            _ratio(
                name,
                goal,
                _value(results, scenario, OM, high, "ok_per_second"),
                _value(results, scenario, OM, low, "ok_per_second"),
                lambda r: r >= 0.9,
                lambda r, a, b: f"{100 * r:.0f}% ({a:,.0f} at {high} vs {b:,.0f} at {low})",
            )
        )
    return found


def _errors(doc: dict[str, Any]) -> Target:
    runs = [r for r in doc["runs"] if r["implementation"] == OM]
    goal = "0 besides designed 503 sheds"
    if not runs:
        return _target("Ordermesh errors", goal, "not measured", None)
    errors = sum(r["errors"] for r in runs)
    sheds = sum(r["shed"] for r in runs)
    statuses: dict[str, int] = {}
    for r in runs:
        for status, n in r["statuses"].items():
            if not status.startswith("2") and status != "503":
                statuses[status] = statuses.get(status, 0) + n
    sockets = sum(sum(r["socket_errors"].values()) for r in runs)
    export: dict[str, Any] = (doc.get("export_results") or {}).get(OM) or {}
    bad_export = bool(export) and export["statuses"] != [200]
    measured = (
        f"{errors:,} errors in {sum(r['requests'] for r in runs):,} answers "
        f"(non-2xx other than 503: {statuses or 'none'}; socket errors {sockets:,}); "
        f"{sheds:,} sheds"
    )
    if bad_export:
        measured += f"; export statuses {export['statuses']}"
    return _target(
        "Ordermesh errors", goal, measured, errors == 0 and not bad_export, errors=errors
    )


def _create(doc: dict[str, Any], level: int) -> list[Target]:
    results = doc["results"]
    found = [
        _ratio(
            "create vs default_async, req/s",
            "≥ 2x at 256",
            _value(results, "create", OM, level, "ok_per_second"),
            _value(results, "create", "default_async", level, "ok_per_second"),
            lambda r: r >= 2,
            lambda r, a, b: f"{r:.2f}x ({a:,.0f} vs {b:,.0f} 2xx/s){_at(level, 256)}",
        )
    ]
    events = doc.get("events")
    goal = "p99 ≤ 100 ms at half the max create rate"
    if not events or events.get("p99_ms") is None:
        found.append(_target("event latency", goal, "not measured", None))
    else:
        complete = events["recorded"] >= events["created"] > 0
        found.append(
            _target(
                "event latency",
                goal,
                f"p99 {events['p99_ms']:.1f} ms, p50 {events['p50_ms']:.1f} ms at "
                f"{events['rate']:.0f}/s ({events['recorded']}/{events['created']} recorded)",
                events["p99_ms"] <= 100 and complete,
                p99_ms=events["p99_ms"],
            )
        )
    return found


def _export(doc: dict[str, Any]) -> list[Target]:
    found = doc.get("export_results") or {}
    mine = found.get(OM)
    if not mine:
        return [
            _target("export vs COPY", "≤ 3x the COPY time", "not measured", None),
            _target("export gateway RSS growth", "≤ 50 MB", "not measured", None),
        ]
    rows_ok = mine["rows_read_back"] == found["rows"]
    seconds, copy = mine["seconds"]["median"], found["copy_seconds"]["median"]
    growth = mine["front_rss_growth_mb"]["max"]
    return [
        _target(
            "export vs COPY",
            "≤ 3x the COPY time",
            f"{mine['times_copy']:.2f}x ({seconds:.2f} s vs {copy:.2f} s for {found['rows']:,} "
            f"rows{'' if rows_ok else ', ROWS MISSING: ' + str(mine['rows_read_back'])})",
            mine["times_copy"] <= 3 and rows_ok,
            ratio=mine["times_copy"],
        ),
        _target(
            "export gateway RSS growth",
            "≤ 50 MB",
            f"{growth:.1f} MB (largest of the rounds)",
            growth <= 50,
            mb=growth,
        ),
    ]


def _size(results: dict[str, Any]) -> Target:
    name, goal = "read p50, 1M vs 10k orders", "within 10%"
    small = results.get("size_small", {}).get(OM)
    large = results.get("size_large", {}).get(OM)
    if not small or not large:
        return _target(name, goal, "not measured", None)
    level = next(iter(small))
    a = float(large[level]["p50_ms"]["median"])
    b = float(small[level]["p50_ms"]["median"])
    return _ratio(
        name,
        goal,
        a,
        b,
        lambda r: r <= 1.10,
        lambda r, x, y: f"{100 * (r - 1):+.1f}% ({x:.2f} vs {y:.2f} ms at {level})",
    )


def _rss(results: dict[str, Any], level: int) -> list[Target]:
    peaks: dict[str, float] = {}
    for scenario in ("read", "list", "summary", "create"):
        cell = results.get(scenario, {}).get(OM, {}).get(str(level))
        for role, mb in (cell or {}).get("peak_rss_mb", {}).items():
            peaks[role] = max(peaks.get(role, 0.0), mb)
    if not peaks:
        return [_target("RSS per service", "≤ 150 MB at 1024", "not measured", None)]
    return [
        _target(
            f"RSS of {role}",
            "≤ 150 MB at 1024",
            f"{mb:.0f} MB (peak over scenarios){_at(level, 1024)}",
            mb <= 150,
            mb=mb,
        )
        for role, mb in sorted(peaks.items())
    ]
