"""The `ordermesh` developer command: `up`, `proto`, `pins`, `config-table`,
`metrics-table`, `dashboards`, `k8s-manifests` and `token`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ordermesh.paths import REPO_ROOT, STATE_DIR
from ordermesh.stackspec import (
    DEFAULT_PG_PORT,
    DEFAULT_PROMETHEUS_PORT,
    DEFAULT_START_TIMEOUT,
    StackOptions,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.command
    return command(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ordermesh", description=__doc__)
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="run the local stack until Ctrl-C",
        description="Start PostgreSQL (embedded unless ORDERS_DATABASE_URL is set), check "
        "RabbitMQ (AMQP_URL), start the services and a Prometheus that scrapes them, print "
        "their endpoints; Ctrl-C stops all.",
    )
    up.set_defaults(command=_up)
    up.add_argument(
        "--state-dir",
        type=Path,
        default=STATE_DIR,
        help="embedded PostgreSQL data and service logs (default: .state in the repository)",
    )
    up.add_argument(
        "--pg-port",
        type=port_number,
        default=DEFAULT_PG_PORT,
        help="port of the embedded PostgreSQL, used unless ORDERS_DATABASE_URL is set "
        "(default: %(default)s)",
    )
    up.add_argument(
        "--orders-grpc-port", type=port_number, default=50051, help="(default: %(default)s)"
    )
    up.add_argument(
        "--orders-http-port",
        type=port_number,
        default=8081,
        help="orders /healthz, /readyz, /metrics (default: %(default)s)",
    )
    up.add_argument(
        "--notify-http-port",
        type=port_number,
        default=8082,
        help="notify API, /healthz, /readyz, /metrics (default: %(default)s)",
    )
    up.add_argument(
        "--gateway-http-port",
        type=port_number,
        default=8080,
        help="the public API, /healthz, /readyz, /metrics (default: %(default)s)",
    )
    up.add_argument(
        "--prometheus-port",
        type=port_number,
        default=DEFAULT_PROMETHEUS_PORT,
        help="Prometheus UI and API (default: %(default)s)",
    )
    up.add_argument(
        "--scrape-interval",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="scrape and rule evaluation interval "
        "(default: the one in observability/prometheus/prometheus.yml)",
    )
    up.add_argument(
        "--start-timeout",
        type=float,
        default=DEFAULT_START_TIMEOUT,
        help="seconds each service gets to become ready (default: %(default)s)",
    )

    proto = commands.add_parser("proto", help="regenerate the gRPC code in libs/contracts")
    proto.set_defaults(command=_proto)

    pins = commands.add_parser("pins", help="rewrite constraint-dependencies from uv's resolution")
    pins.set_defaults(command=_pins)
    pins.add_argument("--uv", help="the uv executable (default: $UV, PATH, .tools/bin/uv)")

    table = commands.add_parser("config-table", help="print the README configuration table")
    table.set_defaults(command=_config_table)

    metrics = commands.add_parser("metrics-table", help="print the README metrics table")
    metrics.set_defaults(command=_metrics_table)

    dashboards = commands.add_parser(
        "dashboards",
        help="write the Grafana dashboards (observability/grafana/dashboards) and the "
        "chart's copies of them and of the Prometheus rules (charts/ordermesh/files)",
    )
    dashboards.set_defaults(command=_dashboards)
    dashboards.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a committed file differs"
    )

    manifests = commands.add_parser(
        "k8s-manifests",
        help="write k8s/manifests (plain manifests for kubectl, rendered from the chart)",
    )
    manifests.set_defaults(command=_k8s_manifests)
    manifests.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a committed file differs"
    )

    token = commands.add_parser(
        "token",
        help="print an HS256 bearer token the gateway accepts in development",
        description="Mint a JWT signed with $GATEWAY_JWT_SECRET (or the development default).",
    )
    token.set_defaults(command=_token)
    token.add_argument("--sub", required=True, help="the subject (user) the token speaks for")
    token.add_argument(
        "--ttl",
        type=positive_int,
        default=3600,
        help="seconds until it expires (default: %(default)s)",
    )
    token.add_argument("--aud", help="audience (default: the gateway's development audience)")
    token.add_argument("--iss", help="issuer (default: the gateway's development issuer)")
    return parser


def _up(args: argparse.Namespace) -> int:
    from ordermesh.progress import Progress
    from ordermesh.up import run_up

    options = StackOptions(
        state_dir=args.state_dir.resolve(),
        pg_port=args.pg_port,
        orders_grpc_port=args.orders_grpc_port,
        orders_http_port=args.orders_http_port,
        notify_http_port=args.notify_http_port,
        gateway_http_port=args.gateway_http_port,
        prometheus_port=args.prometheus_port,
        scrape_interval_seconds=args.scrape_interval,
        start_timeout=args.start_timeout,
        environ=dict(os.environ),
    )
    return asyncio.run(run_up(options, Progress(sys.stdout)))


def _proto(args: argparse.Namespace) -> int:
    from ordermesh.codegen import CONTRACTS_ROOT, generate

    for path in generate(CONTRACTS_ROOT):
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


def _pins(args: argparse.Namespace) -> int:
    from ordermesh.pins import PYPROJECT, find_uv, resolved_pins, write_pins

    pins = resolved_pins(find_uv(args.uv))
    changed = write_pins(pins)
    state = "updated" if changed else "already up to date"
    print(f"{len(pins)} pins in {PYPROJECT.relative_to(REPO_ROOT)}: {state}")
    return 0


def _metrics_table(args: argparse.Namespace) -> int:
    from ordermesh.metrics_table import render_metrics_table

    sys.stdout.write(render_metrics_table())
    return 0


def _dashboards(args: argparse.Namespace) -> int:
    from ordermesh.dashboards import stale, stale_chart_copies, write, write_chart_copies

    if args.check:
        differing = stale() + stale_chart_copies()
        for path in differing:
            print(f"out of date: {path.relative_to(REPO_ROOT)} (run `ordermesh dashboards`)")
        return 1 if differing else 0
    for path in write():
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    for path in write_chart_copies():  # written, or removed with its source
        print(f"updated {path.relative_to(REPO_ROOT)}")
    return 0


def _k8s_manifests(args: argparse.Namespace) -> int:
    from ordermesh.k8s_manifests import stale, write

    if args.check:
        differing = stale()
        for path in differing:
            print(f"out of date: {path.relative_to(REPO_ROOT)} (run `ordermesh k8s-manifests`)")
        return 1 if differing else 0
    for path in write():
        print(f"updated {path.relative_to(REPO_ROOT)}")
    return 0


def _config_table(args: argparse.Namespace) -> int:
    from ordermesh.config_table import render_config_table

    sys.stdout.write(render_config_table())
    return 0


def _token(args: argparse.Namespace) -> int:
    from ordermesh.token import mint_dev_token

    token = mint_dev_token(
        subject=args.sub,
        ttl_seconds=args.ttl,
        audience=args.aud,
        issuer=args.iss,
        environ=os.environ,
    )
    print(token)
    return 0


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def port_number(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (1-65535)")
    return port
