"""One harness run: start everything, seed, measure each scenario, stop; the raw records.

Implementations are measured in turn, side by side in one run on one machine state:
for each scenario, round by round, every connection level (in an order rotated each
round) and at each level every implementation once (also rotated each round), so no
implementation or level always follows the same neighbour. Before each wrk run the
harness waits for a drain (nothing in flight in the gateway, the outbox published, and
every process of every implementation and PostgreSQL quiet), so one run's leftovers
do not land on the next one's numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import psutil
from servicekit.testing.otlp import OtlpReceiver

from bench.baselines.launch import Implementation, Name
from bench.harness import events, export, wrk
from bench.harness.dataset import (
    EXPORT_CUSTOMER,
    Dataset,
    count_orders,
    create_databases,
    describe,
    seed_readers,
    seed_rest,
    shrink,
)
from bench.harness.implementations import (
    DESCRIPTIONS,
    OrdermeshStack,
    Running,
    baseline,
    ordermesh_settings,
    rabbitmq,
    running_baseline,
)
from bench.harness.pinning import Pinning, affinity
from bench.harness.plan import Plan
from bench.harness.processes import Measure, Watched, wait_outside_quiet, wait_quiet
from bench.harness.scenarios import WRK, WrkScenario
from bench.harness.stats import spread

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
BASELINES: tuple[Name, ...] = ("sync", "default_async", "ceiling")
SIZE_BLOCKS = 3  # blocks of each table size, in turn
SIZE_ROUNDS_PER_ROUND = 2  # a read is cheap next to the drift it must see through


@dataclass
class Context:
    plan: Plan
    stack: OrdermeshStack
    running: list[Running]
    watched: dict[str, Watched]
    everything: Watched  # all implementations' processes and the shared ones
    dataset: Dataset
    log: Callable[[str], None]
    runs: list[dict[str, Any]] = field(default_factory=list)
    disturbed: list[dict[str, Any]] = field(default_factory=list)  # measured again
    export: dict[str, Any] | None = None
    events: dict[str, Any] | None = None
    grpc_floor: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def order(self, round_: int, names: Sequence[Running] | None = None) -> list[Running]:
        return rotated(names if names is not None else self.running, round_)

    def drain(self) -> float:
        """Seconds waited until nothing is left of the last run (or the plan's limit),
        then (briefly) for load from outside this run to pass."""
        started = time.perf_counter()
        limit = self.plan.drain_seconds
        for implementation in self.running:
            while implementation.busy() and time.perf_counter() - started < limit:
                time.sleep(0.1)
        left = max(0.5, limit - (time.perf_counter() - started))
        wait_quiet(self.everything, seconds=left)
        waited = time.perf_counter() - started
        if waited >= limit:
            self.log(f"drain: still busy after {limit:g}s, measuring anyway")
        wait_outside_quiet(self.everything.shared, seconds=self.plan.outside_wait_seconds)
        return waited


Run = dict[str, Any]


def until_undisturbed(
    once: Callable[[int], Run], limit: float, remeasure: int
) -> tuple[Run, list[Run]]:
    """`once(attempt)` until a run has at most `limit` cores busy outside, or
    `remeasure` more attempts are spent (the last stands): (kept, disturbed ones)."""
    disturbed: list[Run] = []
    for attempt in range(remeasure + 1):
        run = once(attempt)
        if run["outside_cores"] <= limit or attempt == remeasure:
            return run, disturbed
        disturbed.append(run)
    raise AssertionError("unreachable")  # the last attempt always returns


def rotated(items: Sequence[T], round_: int) -> list[T]:
    """`items` started `round_` places in: no item is always first, or always after
    the same neighbour."""
    shift = round_ % len(items) if items else 0
    return [*items[shift:], *items[:shift]]


def run(plan: Plan, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure `plan`; the document report.py completes (results, targets) and writes."""
    say = log or _stderr
    started_at, started = datetime.now(UTC), time.perf_counter()
    code = _code()  # what the processes started below load
    pinning = Pinning.for_machine(plan.pin)
    work = Path(tempfile.mkdtemp(prefix="ordermesh-harness-"))
    load_before = os.getloadavg()[0]
    try:
        with contextlib.ExitStack() as exits:
            sink = exits.enter_context(OtlpReceiver(keep_spans=False))
            say(f"starting the Ordermesh stack (state in {work / 'stack'})")
            stack = exits.enter_context(OrdermeshStack(work / "stack", sink.endpoint))
            ctx, seeding = _prepare(plan, stack, work, exits, pinning, say)
            _measure(ctx, seeding, say)
            implementations = {
                r.name: {
                    "description": DESCRIPTIONS[r.name],
                    "front": r.front,
                    "processes": {role: p.pid for role, p in r.own.items()},
                    "affinity": {role: affinity(p.pid) for role, p in r.own.items()},
                }
                for r in ctx.running
            }
            spans = {"export_posts": sink.posts, "export_bytes": sink.bytes}
    except BaseException:
        say(f"failed; logs kept in {work}")
        raise
    shutil.rmtree(work, ignore_errors=True)
    return {
        "kind": "ordermesh-benchmark",
        "code": code,
        "started_at": started_at.isoformat(timespec="seconds"),
        "run_seconds": time.perf_counter() - started,
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m_before": load_before,
            "memory_gb": psutil.virtual_memory().total / 1024**3,
            "pinning": pinning.describe() if pinning else None,
            "wrk_threads": wrk.threads_for(max(plan.connections)),
        },
        "plan": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(plan).items()},
        "implementations": implementations,
        "ordermesh_settings": {
            "defaults": ordermesh_settings(),
            "tracing_export": spans,
        },
        "data": ctx.data,
        "runs": ctx.runs,
        "disturbed_runs": ctx.disturbed,
        "export": ctx.export,
        "events": ctx.events,
        "grpc_floor": ctx.grpc_floor,
    }


def _prepare(
    plan: Plan,
    stack: OrdermeshStack,
    work: Path,
    exits: contextlib.ExitStack,
    pinning: Pinning | None,
    say: Callable[[str], None],
) -> tuple[Context, dict[str, Any]]:
    names = [n for n in plan.implementations if n in ("sync", "default_async")]
    urls = {"ordermesh": stack.orders_db}
    created = asyncio.run(create_databases(stack.server, [f"bench_{n}" for n in names]))
    urls |= dict(zip(names, created.values(), strict=True))
    baselines: list[tuple[Name, Implementation]] = []
    for name in BASELINES:
        if name in plan.implementations:
            implementation = baseline(
                name,
                log_dir=work / "logs",
                database_url=urls.get(name, stack.orders_db),
                notify_url=stack.notify_url,
                export_customer=EXPORT_CUSTOMER,
                export_rows=plan.data.export_rows,
            )
            implementation.start()
            exits.callback(implementation.stop)
            baselines.append((name, implementation))
    # Seeded while the baselines start (they read nothing before the first request).
    say(f"seeding {plan.data.small_orders} reader orders into {len(urls)} databases")
    dataset, small = asyncio.run(
        seed_readers(urls.values(), stack.notify_db, plan.data, work / "files")
    )
    seeding: dict[str, Any] = {"readers_seconds": small, "urls": list(urls.values())}
    for _, implementation in baselines:
        implementation.wait_ready()
    running = [stack.running()] if "ordermesh" in plan.implementations else []
    running += [running_baseline(name, impl) for name, impl in baselines]
    running.sort(key=lambda r: plan.implementations.index(r.name))
    postgres = stack.postgres()
    if pinning is not None:
        # Only now that all is up (start-up used both CPUs): everything to the shared
        # CPUs, then each front tier to its own.
        others = [p.pid for p in psutil.Process().children(recursive=True)]
        others += [postgres.pid, *(p.pid for p in postgres.children(recursive=True))]
        pinning.apply(fronts=[r.own[r.front].pid for r in running], others=others)
    shared = {"postgres": postgres, "prometheus": psutil.Process(stack.pid("prometheus"))}
    broker = rabbitmq()
    if broker is not None:
        shared["rabbitmq"] = broker
    watched = {r.name: Watched(r.own, shared) for r in running}
    own_all = {f"{r.name}.{role}": p for r in running for role, p in r.own.items()}
    own_all |= {
        f"ordermesh.{s}": psutil.Process(stack.pid(s)) for s in ("gateway", "orders", "notify")
    }
    ctx = Context(plan, stack, running, watched, Watched(own_all, shared), dataset, say)
    return ctx, seeding


def _measure(ctx: Context, seeding: dict[str, Any], say: Callable[[str], None]) -> None:
    plan = ctx.plan
    urls = cast(list[str], seeding["urls"])
    sizes: dict[str, int] = {}
    # Table size: small, large, small, large, ... (SIZE_BLOCKS of each), twice the rounds
    # split between the blocks, so the machine's drift over the minutes between the
    # sizes lands on both alike instead of on whichever came second.
    sized = "size" in plan.scenarios
    with_data = [r for r in ctx.running if r.name != "ceiling"]
    per_block = -(-plan.rounds * SIZE_ROUNDS_PER_ROUND // SIZE_BLOCKS)
    for block in range(SIZE_BLOCKS if sized else 1):
        rounds = range(block * per_block, (block + 1) * per_block)
        if sized:
            if block:
                say("shrinking the table to the readers' orders")
                shrunk = asyncio.run(shrink(urls, plan.data))
                seeding.setdefault("shrink_seconds", []).append(shrunk)
            sizes["small"] = asyncio.run(count_orders(ctx.stack.orders_db))
            _wrk(ctx, WRK["read"], "size_small", (plan.size_connections,), with_data, rounds)
        say(f"seeding the rest: {plan.data.total_orders} orders in all")
        seeding.setdefault("rest_seconds", []).append(asyncio.run(seed_rest(urls, plan.data)))
        sizes["large"] = asyncio.run(count_orders(ctx.stack.orders_db))
        if sized:
            _wrk(ctx, WRK["read"], "size_large", (plan.size_connections,), with_data, rounds)
    if "read" in plan.scenarios:
        ctx.grpc_floor = _grpc_floor(ctx)
    for name in ("read", "list", "summary"):
        if name in plan.scenarios:
            _wrk(ctx, WRK[name], name, plan.connections, ctx.running)
    if "export" in plan.scenarios:
        ctx.export = _export(ctx)
    if "create" in plan.scenarios:
        _wrk(ctx, WRK["create"], "create", plan.connections, ctx.running)
        ctx.events = _events(ctx)
    ctx.data = {
        **describe(ctx.dataset, plan.data),
        "orders_in_table": sizes,
        "seeding": seeding,
    }


def _wrk(
    ctx: Context,
    scenario: WrkScenario,
    label: str,
    levels: Sequence[int],
    implementations: Sequence[Running],
    rounds: Sequence[int] | None = None,
) -> None:
    plan, limit = ctx.plan, ctx.plan.data.page_limit
    if plan.warmup > 0:
        for implementation in implementations:
            ctx.drain()
            wrk.run(
                scenario.script,
                implementation.url,
                connections=levels[0],
                seconds=plan.warmup,
                env=scenario.env(ctx.dataset, limit),
                timeout=plan.timeout,
            )
    # Rounds outermost: each round sweeps every level (in an order rotated each round),
    # so a ratio between levels (no collapse) is measured minutes apart at most, not
    # across the whole scenario, and the machine's drift lands on every level alike.
    for round_ in range(plan.rounds) if rounds is None else rounds:
        for connections in rotated(levels, round_):
            for implementation in ctx.order(round_, implementations):
                once = partial(_wrk_once, ctx, scenario, label, implementation, connections, round_)
                kept, disturbed = until_undisturbed(once, plan.outside_limit, plan.remeasure)
                ctx.runs.append(kept)
                ctx.disturbed += disturbed


def _wrk_once(
    ctx: Context,
    scenario: WrkScenario,
    label: str,
    implementation: Running,
    connections: int,
    round_: int,
    attempt: int,
) -> Run:
    plan = ctx.plan
    waited = ctx.drain()
    with Measure(ctx.watched[implementation.name]) as usage:
        result = wrk.run(
            scenario.script,
            implementation.url,
            connections=connections,
            seconds=plan.duration,
            env=scenario.env(ctx.dataset, plan.data.page_limit),
            timeout=plan.timeout,
        )
    outside = usage.outside_cores
    busy = f"  {outside:.2f} cores busy outside" if outside > plan.outside_limit else ""
    ctx.log(
        f"{label:<10} c={connections:<5} round {round_} {implementation.name:<13} "
        f"{result.ok_per_second:>8.0f} 2xx/s  p50 {result.p50_ms:7.1f} ms  "
        f"p99 {result.p99_ms:7.1f} ms  sheds {result.shed:>6}  "
        f"errors {result.errors:>5}  (drained {waited:.1f}s){busy}"
    )
    return {
        "scenario": label,
        "implementation": implementation.name,
        "connections": connections,
        "round": round_,
        "attempt": attempt,
        **result.record(),
        "cpu_own_s": usage.cpu_own,
        "cpu_shared_s": usage.cpu_shared,
        "cpu_s_per_1k": usage.cpu_per_1k(result.requests),
        "peak_rss_mb": usage.peak_rss_mb,
        "machine_busy_cores": usage.machine_busy_cores,
        "outside_cores": outside,
        "drain_wait_s": waited,
        "drained": waited < plan.drain_seconds,
    }


def _export(ctx: Context) -> dict[str, Any]:
    plan, dataset = ctx.plan, ctx.dataset
    checked: dict[str, int] = {}
    for implementation in ctx.running:
        ctx.drain()
        checked[implementation.name] = export.count_rows(implementation.url, dataset.export_token)
    runs: list[dict[str, Any]] = []
    copies: list[dict[str, Any]] = []
    for round_ in range(plan.rounds):
        for implementation in ctx.order(round_):
            ctx.drain()
            front = implementation.own[implementation.front]
            timed = export.timed_export(implementation.url, dataset.export_token, front)
            timed |= {
                "implementation": implementation.name,
                "round": round_,
                "rows_per_second": dataset.export_rows / timed["seconds"],
            }
            runs.append(timed)
            ctx.log(
                f"export     round {round_} {implementation.name:<13} {timed['seconds']:.2f} s "
                f"status {timed['status']}  RSS +{timed['front_rss_growth_mb']:.1f} MB"
            )
        ctx.drain()
        copied = export.timed_copy(ctx.stack.orders_db, dataset.export_customer)
        copies.append({"round": round_, **copied})
        ctx.log(f"export     round {round_} psql COPY      {copied['seconds']:.2f} s")
    return {
        "rows": dataset.export_rows,
        "rows_read_back": checked,
        "copy_statement": export.copy_statement(dataset.export_customer),
        "runs": runs,
        "copy": copies,
    }


def _events(ctx: Context) -> dict[str, Any] | None:
    rates: dict[int, list[float]] = {}
    for run in ctx.runs:
        if run["scenario"] == "create" and run["implementation"] == "ordermesh":
            rates.setdefault(run["connections"], []).append(run["ok_per_second"])
    if not rates or ctx.plan.event_seconds <= 0:
        return None
    best = max(spread(values)["median"] for values in rates.values())
    ctx.drain()
    found = asyncio.run(
        events.probe(
            ctx.stack.url,
            ctx.stack.notify_db,
            rate=max(1.0, best / 2),
            seconds=ctx.plan.event_seconds,
        )
    )
    ctx.log(
        f"events     {found['rate']:.0f}/s for {found['seconds']:.0f} s: p50 {found['p50_ms']} ms, "
        f"p99 {found['p99_ms']} ms ({found['recorded']}/{found['created']} recorded)"
    )
    return {"max_create_rate": best, **found}


def _grpc_floor(ctx: Context) -> dict[str, Any]:
    """bench/grpc_floor.py in this run: the CPU of one grpc.aio hop with nothing behind it
    (client on CPU 0 and server on CPU 1, as the gateway and orders are pinned)."""
    ctx.drain()
    out = Path(tempfile.mkdtemp(prefix="ordermesh-floor-")) / "floor.json"
    args = [f"--rounds={ctx.plan.rounds}", f"--duration={ctx.plan.duration}", f"--out={out}"]
    subprocess.run(  # noqa: S603 (our own script)
        [sys.executable, str(ROOT / "bench" / "grpc_floor.py"), *args],
        check=True,
        capture_output=True,
        timeout=60 + 2 * ctx.plan.rounds * ctx.plan.duration,
    )
    floor: dict[str, Any] = json.loads(out.read_text())
    shutil.rmtree(out.parent, ignore_errors=True)
    summary = floor["summary"]
    ctx.log(
        f"grpc floor {summary['calls_per_s']['median']:.0f} calls/s, client "
        f"{summary['client_ms_per_call']['median']:.3f} ms, server "
        f"{summary['server_ms_per_call']['median']:.3f} ms CPU per call"
    )
    return floor


def _code() -> dict[str, Any]:
    """The commit measured, and files changed in the work tree then (they ran too)."""

    def git(*args: str) -> str:
        done = subprocess.run(  # noqa: S603 (git, fixed arguments)
            [shutil.which("git") or "git", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted": git("status", "--porcelain").splitlines(),
    }


def _stderr(line: str) -> None:
    sys.stderr.write(f"[{datetime.now().strftime('%H:%M:%S')}] {line}\n")
    sys.stderr.flush()
