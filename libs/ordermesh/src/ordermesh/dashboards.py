"""The Grafana dashboards of Ordermesh as code, one function per dashboard.

`ordermesh dashboards` writes them to observability/grafana/dashboards as JSON (fixed
uid, sorted keys, so a change shows as a small diff); `--check` fails when the
committed files differ from what this module builds, and a test does the same.
Helm reads no file outside its chart, so the same command keeps byte-identical
copies of the dashboards and of observability/prometheus/rules/*.yml under
charts/ordermesh/files/ (`chart_copies`), checked the same way.

Query conventions (docs/observability.md): `job` is the service name (`gateway`,
`orders`, `notify`; `rabbitmq` for the broker), the only Grafana variable inside an
expression is `$__rate_interval`, and every expression reads raw metrics (never a
recording rule), so a dashboard works on a Prometheus without the rule files.
Families with labels only appear after their first observation, so queries over
them end in `or on() vector(0)`: before the first request a panel shows 0 rather
than "No data" (a quantile of 0 there means "no calls yet", not "instant").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Final

from ordermesh import generated
from ordermesh.dashboard_model import Json, dashboard, query, stat, timeseries, value_names
from ordermesh.paths import REPO_ROOT

DASHBOARD_DIR: Final = REPO_ROOT / "observability" / "grafana" / "dashboards"
RULES_DIR: Final = REPO_ROOT / "observability" / "prometheus" / "rules"
CHART_FILES_DIR: Final = REPO_ROOT / "charts" / "ordermesh" / "files"

RATE: Final = "[$__rate_interval]"
HTTP: Final = "ordermesh_http_server_request_duration_seconds"
GRPC: Final = "ordermesh_grpc_server_handling_seconds"
GRPC_CLIENT: Final = "ordermesh_grpc_client_duration_seconds"
HTTP_CLIENT: Final = "ordermesh_http_client_duration_seconds"
READS_PER_CALL: Final = "ordermesh_gateway_orders_reads_per_call"
# A stream's duration is its size, not its latency: kept out of latency panels.
NOT_EXPORT_ROUTE: Final = 'route!="/v1/orders/export"'
NOT_EXPORT_METHOD: Final = 'method!="ExportOrders"'
# gRPC codes that are orders' fault (the gateway maps them to 502/503/504); the
# others (NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION, ...) are the caller's.
GRPC_SERVER_FAULTS: Final = (
    'code=~"UNKNOWN|INTERNAL|UNAVAILABLE|DEADLINE_EXCEEDED|DATA_LOSS|UNIMPLEMENTED'
    '|RESOURCE_EXHAUSTED"'
)
SERVICES: Final = 'job=~"gateway|orders|notify"'
MAIN_QUEUE: Final = 'queue="notify.order-events"'
NOTIFY_QUEUES: Final = r'queue=~"notify\\.order-events(\\.retry|\\.dlq)?"'
# Grafana's names for the units used below.
PER_SECOND: Final = "reqps"
OPS: Final = "ops"
SECONDS: Final = "s"
RATIO: Final = "percentunit"
BYTES: Final = "bytes"


def or_zero(expr: str) -> str:
    """0 instead of nothing while a labelled family has no series yet."""
    return f"{expr} or on() vector(0)"


def gauge_sum(selector: str, by: str = "") -> str:
    return f"sum by ({by}) ({selector})" if by else f"sum({selector})"


def rate_sum(selector: str, by: str = "") -> str:
    return gauge_sum(f"rate({selector}{RATE})", by)


def ratio(part: str, whole: str) -> str:
    """sum(rate(part)) / sum(rate(whole)): 0 with no errors, NaN with no traffic."""
    return f"({or_zero(rate_sum(part))}) / ({or_zero(rate_sum(whole))})"


def quantile(q: float, histogram: str, matchers: str, by: str = "", *, labelled: bool) -> str:
    grouping = f"{by}, le" if by else "le"
    expr = f"histogram_quantile({q}, {rate_sum(f'{histogram}_bucket{{{matchers}}}', grouping)})"
    return or_zero(expr) if labelled else expr


def red_panels(service: str, histogram: str, *, errors: str, timed: str = "") -> list[Json]:
    """Rate, error ratio and p50/p99 latency of one service's server histogram.

    `timed` narrows the latency panel to the requests whose duration is a latency.
    """
    job = f'job="{service}"'
    latency = f"{job},{timed}" if timed else job
    return [
        timeseries(
            f"{service}: requests",
            query(or_zero(rate_sum(f"{histogram}_count{{{job}}}")), service),
            unit=PER_SECOND,
            width=8,
        ),
        timeseries(
            f"{service}: error ratio",
            query(ratio(f"{histogram}_count{{{job},{errors}}}", f"{histogram}_count{{{job}}}")),
            unit=RATIO,
            description="Share of requests that failed through the service's fault.",
            width=8,
        ),
        timeseries(
            f"{service}: latency",
            query(quantile(0.5, histogram, latency, labelled=True), "p50"),
            query(quantile(0.99, histogram, latency, labelled=True), "p99"),
            unit=SECONDS,
            width=8,
        ),
    ]


def process_panels(jobs: str = SERVICES) -> list[Json]:
    return [
        timeseries(
            "Resident memory per pod",
            query(f"sum by (job, instance) (process_resident_memory_bytes{{{jobs}}})"),
            unit=BYTES,
        ),
        timeseries(
            "CPU per pod",
            query(f"sum by (job, instance) (rate(process_cpu_seconds_total{{{jobs}}}{RATE}))"),
            unit="short",
            description="CPU seconds per second (1 = one core).",
        ),
    ]


def pool_panels(service: str) -> list[Json]:
    job = f'job="{service}"'
    return [
        timeseries(
            "DB pool connections",
            query(f"sum by (pool) (ordermesh_db_pool_connections{{{job}}})", "{{pool}} open"),
            query(
                f"sum by (pool) (ordermesh_db_pool_connections_in_use{{{job}}})",
                "{{pool}} in use",
            ),
            query(f"sum by (pool) (ordermesh_db_pool_max_connections{{{job}}})", "{{pool}} max"),
            description="Summed over pods: the connections this service holds on PostgreSQL.",
        ),
        timeseries(
            "DB pool acquire wait p99",
            query(
                quantile(0.99, "ordermesh_db_pool_acquire_seconds", job, "pool", labelled=True),
                "{{pool}}",
            ),
            unit=SECONDS,
            description="A wait near the acquire timeout means the pool is too small.",
        ),
    ]


def overview() -> Json:
    up = f"count by (job) (up{{{SERVICES}}} == 1)"
    return dashboard(
        uid="ordermesh-overview",
        title="Ordermesh / Overview",
        description="RED metrics of every service, the event pipeline and the pods.",
        sections=[
            (
                "Gateway (HTTP, the public edge)",
                red_panels("gateway", HTTP, errors='status_class="5xx"', timed=NOT_EXPORT_ROUTE),
            ),
            (
                "orders (gRPC)",
                red_panels("orders", GRPC, errors=GRPC_SERVER_FAULTS, timed=NOT_EXPORT_METHOD),
            ),
            (
                "notify (HTTP API)",
                red_panels("notify", HTTP, errors='status_class="5xx"'),
            ),
            (
                "Event pipeline",
                [
                    timeseries(
                        "notify backlog (ready + unacked)",
                        query(
                            gauge_sum(
                                f"rabbitmq_detailed_queue_messages{{{NOTIFY_QUEUES}}}", "queue"
                            )
                        ),
                        width=8,
                    ),
                    timeseries(
                        "Event latency, commit to record",
                        query(
                            quantile(
                                0.5,
                                "ordermesh_event_latency_seconds",
                                'job="notify"',
                                labelled=False,
                            ),
                            "p50",
                        ),
                        query(
                            quantile(
                                0.99,
                                "ordermesh_event_latency_seconds",
                                'job="notify"',
                                labelled=False,
                            ),
                            "p99",
                        ),
                        unit=SECONDS,
                        width=8,
                    ),
                    timeseries(
                        "Outbox oldest unpublished row",
                        query('max(ordermesh_outbox_oldest_age_seconds{job="orders"})', "age"),
                        unit=SECONDS,
                        width=8,
                    ),
                ],
            ),
            (
                "Pods",
                [
                    stat("Replicas up", query(up, "{{job}}"), width=24, height=4),
                    *process_panels(),
                ],
            ),
        ],
    )


def gateway() -> Json:
    job = 'job="gateway"'
    return dashboard(
        uid="ordermesh-gateway",
        title="Ordermesh / Gateway",
        description="The public HTTP edge: traffic, protection, downstream calls.",
        sections=[
            (
                "Traffic",
                [
                    timeseries(
                        "Requests by route",
                        query(or_zero(rate_sum(f"{HTTP}_count{{{job}}}", "route")), "{{route}}"),
                        unit=PER_SECOND,
                        description="`unrouted` = refused before routing (401, 413, 429, 503).",
                    ),
                    timeseries(
                        "Requests by status class",
                        query(
                            or_zero(rate_sum(f"{HTTP}_count{{{job}}}", "status_class")),
                            "{{status_class}}",
                        ),
                        unit=PER_SECOND,
                        stacked=True,
                    ),
                    timeseries(
                        "Latency p99 by route",
                        query(quantile(0.99, HTTP, job, "route", labelled=True), "{{route}}"),
                        unit=SECONDS,
                    ),
                    timeseries(
                        "Latency p50 by route",
                        query(quantile(0.5, HTTP, job, "route", labelled=True), "{{route}}"),
                        unit=SECONDS,
                    ),
                    timeseries(
                        "Requests in flight",
                        query(
                            gauge_sum(
                                f"ordermesh_http_server_requests_in_flight{{{job}}}", "instance"
                            ),
                            "{{instance}}",
                        ),
                        description="Queued ones included: past GATEWAY_MAX_IN_FLIGHT requests "
                        "wait, past GATEWAY_MAX_QUEUED more a pod sheds (503).",
                    ),
                ],
            ),
            (
                "Protection",
                [
                    timeseries(
                        "Shed (503) and rate limited (429)",
                        query(rate_sum(f"ordermesh_gateway_shed_total{{{job}}}"), "shed 503"),
                        query(
                            rate_sum(f"ordermesh_gateway_rate_limited_total{{{job}}}"),
                            "rate limited 429",
                        ),
                        unit=PER_SECOND,
                    ),
                    stat(
                        "Circuit state",
                        query(
                            f"max by (downstream) (ordermesh_gateway_circuit_state{{{job}}})",
                            "{{downstream}}",
                        ),
                        description="Worst pod per downstream.",
                        width=12,
                        height=8,
                        mappings=[
                            value_names(
                                {
                                    0: ("closed", "green"),
                                    1: ("open", "red"),
                                    2: ("half-open", "orange"),
                                }
                            )
                        ],
                    ),
                    timeseries(
                        "Coalesced reads",
                        query(
                            or_zero(
                                rate_sum(f"ordermesh_gateway_coalesced_total{{{job}}}", "route")
                            ),
                            "{{route}}",
                        ),
                        unit=PER_SECOND,
                        description="Requests answered by sharing an identical in-flight call.",
                    ),
                    timeseries(
                        "Degraded summaries",
                        query(
                            rate_sum(f"ordermesh_gateway_degraded_summaries_total{{{job}}}"),
                            "degraded",
                        ),
                        unit=PER_SECOND,
                        description="Summaries answered without notifications.",
                    ),
                ],
            ),
            (
                "Downstream calls",
                [
                    timeseries(
                        "gRPC to orders by method and code",
                        query(
                            or_zero(rate_sum(f"{GRPC_CLIENT}_count{{{job}}}", "method, code")),
                            "{{method}} {{code}}",
                        ),
                        unit=PER_SECOND,
                    ),
                    timeseries(
                        "gRPC to orders p99 by method",
                        query(
                            quantile(0.99, GRPC_CLIENT, job, "method", labelled=True),
                            "{{method}}",
                        ),
                        unit=SECONDS,
                        description="Retries included: the time the gateway waited.",
                    ),
                    timeseries(
                        "HTTP to notify by outcome",
                        query(
                            or_zero(rate_sum(f"{HTTP_CLIENT}_count{{{job}}}", "target, outcome")),
                            "{{target}} {{outcome}}",
                        ),
                        unit=PER_SECOND,
                    ),
                    timeseries(
                        "HTTP to notify p99",
                        query(
                            quantile(0.99, HTTP_CLIENT, job, "target", labelled=True),
                            "{{target}}",
                        ),
                        unit=SECONDS,
                        description="Bounded by GATEWAY_NOTIFY_TIMEOUT_SECONDS for summaries.",
                    ),
                    timeseries(
                        "Reads by id per call to orders",
                        query(
                            ratio(
                                f"{READS_PER_CALL}_sum{{{job}}}", f"{READS_PER_CALL}_count{{{job}}}"
                            ),
                            "mean reads per call",
                        ),
                        query(
                            quantile(0.99, READS_PER_CALL, job, labelled=False),
                            "p99 reads per call",
                        ),
                        description="1: reads go alone as GetOrder; more: reads queued behind "
                        "GATEWAY_READ_CALLS_IN_FLIGHT calls share one BatchGetOrders.",
                    ),
                ],
            ),
            ("Process", process_panels(job)),
        ],
    )


def orders() -> Json:
    job = 'job="orders"'
    return dashboard(
        uid="ordermesh-orders",
        title="Ordermesh / Orders",
        description="The orders gRPC service, its database pool and the outbox relay.",
        sections=[
            (
                "gRPC",
                [
                    timeseries(
                        "Calls by method and code",
                        query(
                            or_zero(rate_sum(f"{GRPC}_count{{{job}}}", "method, code")),
                            "{{method}} {{code}}",
                        ),
                        unit=PER_SECOND,
                    ),
                    timeseries(
                        "Server-fault ratio",
                        query(
                            ratio(
                                f"{GRPC}_count{{{job},{GRPC_SERVER_FAULTS}}}",
                                f"{GRPC}_count{{{job}}}",
                            )
                        ),
                        unit=RATIO,
                        description="UNKNOWN, INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED, "
                        "RESOURCE_EXHAUSTED, ... over all calls.",
                    ),
                    timeseries(
                        "p99 by method",
                        query(quantile(0.99, GRPC, job, "method", labelled=True), "{{method}}"),
                        unit=SECONDS,
                        description="ExportOrders is timed until its last message.",
                    ),
                    timeseries(
                        "p50 by method",
                        query(quantile(0.5, GRPC, job, "method", labelled=True), "{{method}}"),
                        unit=SECONDS,
                    ),
                ],
            ),
            ("Database pool", pool_panels("orders")),
            (
                "Outbox",
                [
                    timeseries(
                        "Outbox backlog",
                        query(f"max(ordermesh_outbox_backlog{{{job}}})", "unpublished rows"),
                        description="Rows not published yet (the same table seen from every pod).",
                        width=6,
                    ),
                    timeseries(
                        "Oldest unpublished row",
                        query(f"max(ordermesh_outbox_oldest_age_seconds{{{job}}})", "age"),
                        unit=SECONDS,
                        description="Alert OutboxBacklogOld past 60 s for 5 minutes.",
                        width=6,
                    ),
                    timeseries(
                        "Published",
                        query(rate_sum(f"ordermesh_outbox_published_total{{{job}}}"), "confirmed"),
                        unit=OPS,
                        width=6,
                    ),
                    timeseries(
                        "Publish failures by reason",
                        query(
                            rate_sum(f"ordermesh_outbox_publish_failures_total{{{job}}}", "reason"),
                            "{{reason}}",
                        ),
                        unit=OPS,
                        width=6,
                    ),
                ],
            ),
            (
                "Orders",
                [
                    timeseries(
                        "Created and idempotent replays",
                        query(rate_sum(f"ordermesh_orders_created_total{{{job}}}"), "created"),
                        query(
                            rate_sum(f"ordermesh_orders_idempotent_replays_total{{{job}}}"),
                            "replayed",
                        ),
                        unit=OPS,
                    ),
                    timeseries(
                        "Status changes",
                        query(
                            or_zero(
                                rate_sum(
                                    f"ordermesh_orders_status_changes_total{{{job}}}", "status"
                                )
                            ),
                            "{{status}}",
                        ),
                        unit=OPS,
                    ),
                ],
            ),
            ("Process", process_panels(job)),
        ],
    )


def notify() -> Json:
    job = 'job="notify"'
    return dashboard(
        uid="ordermesh-notify",
        title="Ordermesh / Notify",
        description="The order-events consumer: its queues, outcomes, latency and senders.",
        sections=[
            (
                "Queues (RabbitMQ)",
                [
                    timeseries(
                        "Ready",
                        query(
                            gauge_sum(
                                f"rabbitmq_detailed_queue_messages_ready{{{NOTIFY_QUEUES}}}",
                                "queue",
                            ),
                            "{{queue}}",
                        ),
                        width=8,
                    ),
                    timeseries(
                        "Unacked (delivered, not acknowledged)",
                        query(
                            gauge_sum(
                                f"rabbitmq_detailed_queue_messages_unacked{{{NOTIFY_QUEUES}}}",
                                "queue",
                            ),
                            "{{queue}}",
                        ),
                        width=8,
                    ),
                    timeseries(
                        "Consumers",
                        query(
                            gauge_sum(
                                f"rabbitmq_detailed_queue_consumers{{{NOTIFY_QUEUES}}}", "queue"
                            ),
                            "{{queue}}",
                        ),
                        description="The main queue should have one consumer per notify pod.",
                        width=8,
                    ),
                ],
            ),
            (
                "Consumer",
                [
                    timeseries(
                        "Handled by outcome",
                        query(
                            rate_sum(
                                f"ordermesh_notify_messages_handled_total{{{job}}}", "outcome"
                            ),
                            "{{outcome}}",
                        ),
                        unit=OPS,
                        stacked=True,
                    ),
                    timeseries(
                        "Redelivered",
                        query(
                            rate_sum(f"ordermesh_notify_redelivered_total{{{job}}}"),
                            "redelivered",
                        ),
                        unit=OPS,
                        description="Delivered again: a consumer died or gave them back.",
                    ),
                    timeseries(
                        "Handling p99 (arrival to ack)",
                        query(
                            quantile(
                                0.99, "ordermesh_notify_handling_seconds", job, labelled=False
                            ),
                            "p99",
                        ),
                        unit=SECONDS,
                    ),
                    timeseries(
                        "Event latency, commit in orders to record in notify",
                        query(
                            quantile(0.5, "ordermesh_event_latency_seconds", job, labelled=False),
                            "p50",
                        ),
                        query(
                            quantile(0.99, "ordermesh_event_latency_seconds", job, labelled=False),
                            "p99",
                        ),
                        unit=SECONDS,
                    ),
                    timeseries(
                        "Sender p99 by sender and outcome",
                        query(
                            quantile(
                                0.99,
                                "ordermesh_notify_sender_seconds",
                                job,
                                "sender, outcome",
                                labelled=True,
                            ),
                            "{{sender}} {{outcome}}",
                        ),
                        unit=SECONDS,
                    ),
                    timeseries(
                        "Messages in flight",
                        query(
                            f"sum by (instance) (ordermesh_notify_in_flight{{{job}}})",
                            "{{instance}}",
                        ),
                        description="Bounded by NOTIFY_MAX_CONCURRENCY per pod.",
                    ),
                ],
            ),
            (
                "HTTP API",
                [
                    timeseries(
                        "Requests by route and status class",
                        query(
                            or_zero(rate_sum(f"{HTTP}_count{{{job}}}", "route, status_class")),
                            "{{route}} {{status_class}}",
                        ),
                        unit=PER_SECOND,
                    ),
                    timeseries(
                        "Latency p99 by route",
                        query(quantile(0.99, HTTP, job, "route", labelled=True), "{{route}}"),
                        unit=SECONDS,
                    ),
                ],
            ),
            ("Database pool", pool_panels("notify")),
            ("Process", process_panels(job)),
        ],
    )


def autoscaling() -> Json:
    gateway_pods = 'count(up{job="gateway"} == 1)'
    in_flight = gauge_sum('ordermesh_http_server_requests_in_flight{job="gateway"}')
    gateway_rate = or_zero(rate_sum(f'{HTTP}_count{{job="gateway"}}'))
    notify_pods = 'count(up{job="notify"} == 1)'
    backlog = f"sum(rabbitmq_detailed_queue_messages{{{MAIN_QUEUE}}})"
    return dashboard(
        uid="ordermesh-autoscaling",
        title="Ordermesh / Autoscaling signals",
        description="The signals the autoscalers act on, next to the replica counts.",
        sections=[
            (
                "gateway: scales on requests per pod",
                [
                    timeseries(
                        "Requests per second per pod",
                        query(
                            f"({gateway_rate}) / {gateway_pods}",
                            "per pod",
                        ),
                        unit=PER_SECOND,
                        width=8,
                    ),
                    timeseries(
                        "Requests in flight per pod",
                        query(
                            f"{in_flight} / {gateway_pods}",
                            "per pod",
                        ),
                        description="Queued included: past GATEWAY_MAX_IN_FLIGHT they wait, past "
                        "GATEWAY_MAX_IN_FLIGHT + GATEWAY_MAX_QUEUED a pod sheds.",
                        width=8,
                    ),
                    timeseries("gateway replicas", query(gateway_pods, "up"), width=8),
                ],
            ),
            (
                "notify: scales on queue backlog per replica",
                [
                    timeseries(
                        "Main queue backlog (ready + unacked)",
                        query(backlog, "notify.order-events"),
                        width=8,
                    ),
                    timeseries(
                        "Backlog per notify replica",
                        query(f"{backlog} / {notify_pods}", "per replica"),
                        width=8,
                    ),
                    timeseries("notify replicas", query(notify_pods, "up"), width=8),
                ],
            ),
            (
                "All services",
                [
                    timeseries(
                        "Replicas up",
                        query(f"count by (job) (up{{{SERVICES}}} == 1)", "{{job}}"),
                    ),
                    timeseries(
                        "CPU per pod",
                        query(
                            rate_sum(f"process_cpu_seconds_total{{{SERVICES}}}", "job")
                            + f" / count by (job) (up{{{SERVICES}}} == 1)",
                            "{{job}}",
                        ),
                        description="CPU seconds per second per pod, averaged over the service.",
                    ),
                ],
            ),
        ],
    )


DASHBOARDS: Final[dict[str, Callable[[], Json]]] = {
    "overview": overview,
    "gateway": gateway,
    "orders": orders,
    "notify": notify,
    "autoscaling": autoscaling,
}


def render(board: Json) -> str:
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    """File name → the JSON text it should hold."""
    return {f"{name}.json": render(build()) for name, build in DASHBOARDS.items()}


def _expected(directory: Path) -> dict[Path, bytes]:
    return {directory / name: text.encode() for name, text in rendered().items()}


def write(directory: Path = DASHBOARD_DIR) -> list[Path]:
    """Write every dashboard; returns the files whose content changed."""
    return generated.write(_expected(directory))


def stale(directory: Path = DASHBOARD_DIR) -> list[Path]:
    """The committed files that are missing or differ from what this module builds."""
    return generated.stale(_expected(directory))


def chart_copies(files_dir: Path = CHART_FILES_DIR) -> dict[Path, bytes]:
    """What the chart's files/dashboards and files/rules must hold, byte for byte."""
    copies = _expected(files_dir / "dashboards")
    for rule_file in sorted(RULES_DIR.glob("*.yml")):
        copies[files_dir / "rules" / rule_file.name] = rule_file.read_bytes()
    return copies


def _chart_files(files_dir: Path) -> list[Path]:
    return [*files_dir.glob("dashboards/*.json"), *files_dir.glob("rules/*.yml")]


def write_chart_copies(files_dir: Path = CHART_FILES_DIR) -> list[Path]:
    """Bring the chart's copies in step; returns the files written or removed."""
    return generated.write(chart_copies(files_dir), _chart_files(files_dir))


def stale_chart_copies(files_dir: Path = CHART_FILES_DIR) -> list[Path]:
    """Chart copies that are missing, differ from their source, or have none."""
    return generated.stale(chart_copies(files_dir), _chart_files(files_dir))
