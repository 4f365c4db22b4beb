"""What a run leaves: results.json (every raw round, medians with min and max, the
targets), results.md (the tables) and the PNG plots, in one folder."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Final

from bench.harness import plots, targets
from bench.harness.plan import IMPLEMENTATIONS, WRK_SCENARIOS
from bench.harness.scenarios import TITLES
from bench.harness.stats import Spread, spread

METRICS: Final = (
    "ok_per_second",
    "requests_per_second",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "cpu_s_per_1k",
)
SIZES: Final = ("size_small", "size_large")


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` (runner.run's) with `results`, `export_results` and `targets` added."""
    doc = {**doc, "results": aggregate(doc["runs"])}
    doc["export_results"] = export_results(doc["export"]) if doc.get("export") else None
    doc["targets"] = targets.evaluate(doc)
    return doc


def write(doc: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "results.md").write_text(markdown(doc))
    return [out / "results.json", out / "results.md", *plots.draw(doc, out)]


def aggregate(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        groups[(run["scenario"], run["implementation"], run["connections"])].append(run)
    results: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (scenario, name, connections), group in sorted(groups.items()):
        cell: dict[str, Any] = {m: spread([r[m] for r in group]) for m in METRICS}
        requests = sum(r["requests"] for r in group)
        roles = {role for r in group for role in r["peak_rss_mb"]}
        shared = {role for r in group for role in r["cpu_shared_s"]}
        cell |= {
            "rounds": len(group),
            "requests": requests,
            "shed": sum(r["shed"] for r in group),
            "other_non_2xx": sum(r["other_non_2xx"] for r in group),
            "socket_errors": sum(sum(r["socket_errors"].values()) for r in group),
            "errors": sum(r["errors"] for r in group),
            "peak_rss_mb": {role: max(r["peak_rss_mb"][role] for r in group) for role in roles},
            "shared_cpu_s_per_1k": {
                role: 1000 * sum(r["cpu_shared_s"][role] for r in group) / max(1, requests)
                for role in shared
            },
        }
        results[scenario].setdefault(name, {})[str(connections)] = cell
    return dict(results)


def export_results(export: dict[str, Any]) -> dict[str, Any]:
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in export["runs"]:
        by_name[run["implementation"]].append(run)
    copy = spread([c["seconds"] for c in export["copy"]])
    found: dict[str, Any] = {"copy_seconds": copy, "rows": export["rows"]}
    for name, runs in by_name.items():
        seconds = spread([r["seconds"] for r in runs])
        found[name] = {
            "seconds": seconds,
            "rows_per_second": spread([r["rows_per_second"] for r in runs]),
            "times_copy": seconds["median"] / copy["median"],
            "front_rss_growth_mb": spread([r["front_rss_growth_mb"] for r in runs]),
            "statuses": sorted({r["status"] for r in runs}),
            "rows_read_back": export["rows_read_back"].get(name),
        }
    return found


def _cell(value: Spread, fmt: str) -> str:
    return f"{fmt.format(value['median'])} ({fmt.format(value['min'])}-{fmt.format(value['max'])})"


def _names(results: dict[str, dict[str, Any]]) -> list[str]:
    return [n for n in IMPLEMENTATIONS if n in results]


def markdown(doc: dict[str, Any]) -> str:
    plan, machine, data = doc["plan"], doc["machine"], doc["data"]
    pin = machine["pinning"]
    lines = [
        f"# Ordermesh benchmark, {doc['started_at'][:10]}",
        "",
        f"{machine['cpus']} CPUs, "
        + (
            f"front tiers pinned to CPU {pin['front_tier']}, everything else (wrk with "
            f"{machine['wrk_threads']} thread(s), back tiers, PostgreSQL) to "
            f"{pin['everything_else']}"
            if pin
            else "no pinning"
        )
        + f"; load average before the run {machine['load_avg_1m_before']:.2f}. "
        f"The run took {doc['run_seconds'] / 60:.1f} min. "
        f"{_outside(doc['runs'], doc.get('disturbed_runs', []), plan)}",
        "",
        _code(doc["code"]),
        "",
        f"Plan: {', '.join(plan['scenarios'])} at {', '.join(map(str, plan['connections']))} "
        f"connections, {plan['rounds']} round(s) of {plan['duration']:g} s "
        f"(warm-up {plan['warmup']:g} s) per implementation, interleaved. "
        f"Data: {data['orders_in_table'].get('large', 0):,} orders in each table; reads rotate "
        f"over {data['read_pairs']:,} ids of {data['readers']} customers (a token each), "
        f"creates over {data['creators']} subjects, the export reads {data['export_rows']:,}.",
        "",
        f"Ordermesh: {doc['ordermesh_settings']['defaults']}; "
        f"{doc['ordermesh_settings']['tracing_export']['export_posts']} OTLP exports received.",
        "",
        "Cells are median (min-max) over rounds. 2xx/s counts successful answers only; "
        "sheds are Ordermesh's designed 503s; errors are every other non-2xx answer plus "
        "socket errors. Latencies are wrk's over all answers, sheds included. CPU is the "
        "implementation's own processes' seconds per 1,000 answers (PostgreSQL, RabbitMQ "
        "and Prometheus are in results.json).",
        "",
        "## Targets",
        "",
        "| target | goal | measured | met |",
        "|---|---|---|---|",
    ]
    for target in doc["targets"]:
        met = {True: "**met**", False: "**not met**", None: "not measured"}[target["met"]]
        lines.append(f"| {target['name']} | {target['goal']} | {target['measured']} | {met} |")
    results = doc["results"]
    for scenario in WRK_SCENARIOS:
        if scenario in results:
            lines += ["", f"## {scenario}: {TITLES[scenario]}", "", *_wrk_table(results[scenario])]
    if doc.get("export_results"):
        lines += ["", f"## export: {data['export_rows']:,} orders as NDJSON", ""]
        lines += _export_table(doc["export_results"])
    if doc.get("events"):
        e = doc["events"]
        lines += [
            "",
            "## Event latency (Ordermesh creates, commit to notify's record)",
            "",
            f"{e['rate']:.0f} creates/s (half of the best create median, "
            f"{e['max_create_rate']:.0f} 2xx/s), open loop for {e['seconds']:g} s: "
            f"{e['created']} created, "
            f"{e['recorded']} recorded; p50 {_ms(e['p50_ms'])}, p99 {_ms(e['p99_ms'])}, "
            f"max {_ms(e['max_ms'])}; {e['late_sends']} sends more than 10 ms late.",
        ]
    if doc.get("grpc_floor"):
        lines += ["", "## The gRPC hop alone (bench/grpc_floor.py, in this run)", ""]
        lines += _floor(doc["grpc_floor"], doc["runs"])
    if all(s in results for s in SIZES):
        lines += ["", "## Read by id against table size", ""]
        lines += _size_table(results, data)
    lines += ["", "## Peak RSS per process at the highest concurrency (MB)", ""]
    lines += _rss_table(results, max(plan["connections"]))
    return "\n".join(lines) + "\n"


def _code(code: dict[str, Any]) -> str:
    line = f"Code: {code['commit'][:12]}"
    if code["uncommitted"]:
        line += f" with {len(code['uncommitted'])} uncommitted file(s) (in results.json)"
    return line + (f". {code['note']}" if code.get("note") else ".")


def _outside(
    runs: list[dict[str, Any]], disturbed: list[dict[str, Any]], plan: dict[str, Any]
) -> str:
    """How busy the machine was with work not started here, during the wrk runs kept,
    and how many were measured again because of it."""
    if not runs:
        return ""
    outside = sorted(r["outside_cores"] for r in runs)
    again = (
        f" {len(disturbed)} wrk run(s) measured again: more than "
        f"{plan.get('outside_limit', 0):g} cores busy outside (kept apart in results.json)."
        if disturbed
        else ""
    )
    return (
        f"CPU busy outside this run's processes during wrk runs: median "
        f"{outside[len(outside) // 2]:.2f}, max {outside[-1]:.2f} cores.{again}"
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _wrk_table(by_name: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| implementation | connections | 2xx/s | p50 ms | p99 ms | sheds | errors "
        "| CPU s / 1k | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in _names(by_name):
        for connections, c in sorted(by_name[name].items(), key=lambda kv: int(kv[0])):
            rss = ", ".join(f"{role} {mb:.0f}" for role, mb in sorted(c["peak_rss_mb"].items()))
            lines.append(
                f"| {name} | {connections} | {_cell(c['ok_per_second'], '{:,.0f}')} "
                f"| {_cell(c['p50_ms'], '{:.1f}')} | {_cell(c['p99_ms'], '{:.1f}')} "
                f"| {c['shed']:,} | {c['errors']:,} | {c['cpu_s_per_1k']['median']:.2f} | {rss} |"
            )
    return lines


def _export_table(found: dict[str, Any]) -> list[str]:
    lines = [
        "| implementation | seconds | rows/s | x COPY | front RSS growth MB | rows read back |",
        "|---|---|---|---|---|---|",
    ]
    for name in IMPLEMENTATIONS:
        if name in found:
            e = found[name]
            lines.append(
                f"| {name} | {_cell(e['seconds'], '{:.2f}')} "
                f"| {_cell(e['rows_per_second'], '{:,.0f}')} | {e['times_copy']:.2f} "
                f"| {_cell(e['front_rss_growth_mb'], '{:.1f}')} | {e['rows_read_back']:,} |"
            )
    lines.append(f"| psql COPY | {_cell(found['copy_seconds'], '{:.2f}')} | | 1 | | |")
    return lines


def _floor(floor: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    """The hop's CPU per call next to each read's CPU per request, process by process."""
    f = floor["summary"]
    lines = [
        f"GetOrder answered from memory by a bare grpc.aio server, {floor['concurrency']} "
        f"calls in flight (grpc {floor['grpc']}): "
        f"{_cell(f['calls_per_s'], '{:,.0f}')} calls/s; CPU ms per call: client "
        f"{_cell(f['client_ms_per_call'], '{:.3f}')}, "
        f"server {_cell(f['server_ms_per_call'], '{:.3f}')}.",
        "",
        "CPU ms per read by id (median over rounds), each process of each implementation:",
        "",
        "| implementation | connections | per process | all |",
        "|---|---|---|---|",
    ]
    per: dict[tuple[str, int], dict[str, list[float]]] = {}
    for run in runs:
        if run["scenario"] == "read" and run["requests"] and run["implementation"] != "ceiling":
            key = (run["implementation"], run["connections"])
            for role, seconds in run["cpu_own_s"].items():
                per.setdefault(key, {}).setdefault(role, []).append(
                    1000 * seconds / run["requests"]
                )
    for (name, connections), roles in sorted(per.items()):
        medians = {role: statistics.median(values) for role, values in roles.items()}
        cells = ", ".join(f"{role} {ms:.3f}" for role, ms in sorted(medians.items()))
        lines.append(f"| {name} | {connections} | {cells} | {sum(medians.values()):.3f} |")
    return lines


def _size_table(results: dict[str, Any], data: dict[str, Any]) -> list[str]:
    counts = data["orders_in_table"]
    lines = [
        "| implementation | orders in table | 2xx/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    sizes = (("size_small", counts["small"]), ("size_large", counts["large"]))
    lines += [
        f"| {name} | {count:,} | {_cell(c['ok_per_second'], '{:,.0f}')} "
        f"| {_cell(c['p50_ms'], '{:.2f}')} | {_cell(c['p99_ms'], '{:.1f}')} | {c['errors']} |"
        for name in _names(results["size_small"])
        for size, count in sizes
        for c in results[size].get(name, {}).values()
    ]
    return lines


def _rss_table(results: dict[str, Any], connections: int) -> list[str]:
    scenarios = [s for s in WRK_SCENARIOS if s in results]
    lines = [
        "| implementation | process | " + " | ".join(scenarios) + " |",
        "|---|---|" + "---|" * len(scenarios),
    ]
    names = [n for n in IMPLEMENTATIONS if any(n in results[s] for s in scenarios)]
    for name in names:
        peaks = [
            results[s].get(name, {}).get(str(connections), {}).get("peak_rss_mb", {})
            for s in scenarios
        ]
        for role in sorted({role for peak in peaks for role in peak}):
            cells = [peak.get(role) for peak in peaks]
            shown = ["-" if v is None else f"{v:.0f}" for v in cells]
            lines.append(f"| {name} | {role} | " + " | ".join(shown) + " |")
    return lines
