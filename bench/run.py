"""The benchmark: Ordermesh, the sync and default-async baselines and the ceiling, side
by side under wrk, on the same seeded data, in one run (bench/README.md).

    .venv/bin/python bench/run.py                  # the full matrix (make bench)
    .venv/bin/python bench/run.py --smoke          # CI's end-to-end check (make bench-smoke)
    .venv/bin/python bench/run.py --scenarios read create --connections 64 256 --rounds 3

Writes results.json, results.md and PNG plots to --out (default for the full run
bench/results/<YYYY-MM-DD>/harness/, for --smoke .state/bench-smoke/), and prints the
Markdown. Needs wrk, curl, psql, Prometheus and RabbitMQ (scripts/ensure-prereqs.sh).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench.harness import report, runner
from bench.harness.plan import IMPLEMENTATIONS, SCENARIOS, Plan, smoke, with_options

ROOT = Path(__file__).resolve().parents[1]


def parse(argv: list[str] | None = None) -> tuple[Plan, Path | None]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny settings: CI's check")
    parser.add_argument("--out", type=Path, help="folder for results.json, .md and PNGs")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS)
    parser.add_argument("--implementations", nargs="+", choices=IMPLEMENTATIONS)
    parser.add_argument("--connections", nargs="+", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--duration", type=float, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, help="seconds of untimed load per scenario")
    parser.add_argument("--event-seconds", type=float, help="the paced create probe (0: off)")
    parser.add_argument("--no-pin", action="store_true", help="no CPU pinning")
    parser.add_argument(
        "--from-json", type=Path, help="measure nothing: redo tables, targets, plots of a run"
    )
    args = parser.parse_args(argv)
    default_out = (
        ROOT / ".state" / "bench-smoke"
        if args.smoke
        else ROOT / "bench" / "results" / date.today().isoformat() / "harness"
    )
    out = args.out or (args.from_json.parent if args.from_json else default_out)
    plan = smoke(out) if args.smoke else Plan(out=out)
    changed = with_options(
        plan,
        scenarios=tuple(args.scenarios) if args.scenarios else None,
        implementations=tuple(args.implementations) if args.implementations else None,
        connections=tuple(args.connections) if args.connections else None,
        rounds=args.rounds,
        duration=args.duration,
        warmup=args.warmup,
        event_seconds=args.event_seconds,
        pin=False if args.no_pin else None,
    )
    return changed, args.from_json


def main(argv: list[str] | None = None) -> None:
    plan, given = parse(argv)
    doc = report.complete(json.loads(given.read_text()) if given else runner.run(plan))
    written = report.write(doc, plan.out)
    sys.stdout.write((plan.out / "results.md").read_text())
    sys.stderr.write("wrote " + ", ".join(str(p) for p in written) + "\n")


if __name__ == "__main__":
    main()
