"""Prometheus in the local stack: its spec, and the config and targets it starts with.

The scrape config is kept in the repository (observability/prometheus/prometheus.yml)
and names no port: each job reads its targets from `targets/<job>.json`
(file_sd_configs). Before Prometheus starts, the stack writes those files into its
state directory with the ports it really uses, next to a copy of the config whose rule
files point back at the repository and whose intervals the stack may shorten (tests).
The services' targets carry `namespace="local"` (LOCAL_NAMESPACE).
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ordermesh.probes import HttpCheck
from ordermesh.progress import display_path
from ordermesh.stackspec import LOCALHOST, Endpoint, Port, ServiceSpec, StackError, StackOptions

# Where the rabbitmq_prometheus plugin listens, on the broker's host.
RABBITMQ_METRICS_PORT = 15692
RABBITMQ_JOB = "rabbitmq"
# In a cluster, scraping adds the pod's namespace to every series of a service, and the
# chart's autoscaling PromQL selects on it. The local stack's services stand in for
# namespace "local" (one constant, here), so that PromQL, rendered into namespace
# "local", runs unchanged against this Prometheus (tests/test_autoscaling_signals.py).
# Not on the broker: in a cluster it runs in a namespace of its own.
LOCAL_NAMESPACE = "local"
INSTALL_HINT = (
    "On Debian/Ubuntu: apt-get install prometheus (`make up` and `make test` do it when run "
    "as root, through scripts/ensure-prereqs.sh); elsewhere put Prometheus 2.x on PATH."
)
# A local stack's history is for the day's debugging, not for keeping.
RETENTION = "3d"
STOP_SECONDS = 5.0


def prometheus(options: StackOptions, *, scraped: Sequence[ServiceSpec]) -> ServiceSpec:
    """Prometheus on 127.0.0.1:`options.prometheus_port`, scraping `scraped` and RabbitMQ."""
    url = f"http://{LOCALHOST}:{options.prometheus_port}"
    config = options.prometheus_dir / "prometheus.yml"
    targets = scrape_targets(options, scraped)
    return ServiceSpec(
        name="prometheus",
        command=(
            shutil.which("prometheus") or "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={options.prometheus_dir / 'data'}",
            f"--storage.tsdb.retention.time={RETENTION}",
            f"--web.listen-address={LOCALHOST}:{options.prometheus_port}",
        ),
        env={},
        ports=(Port(options.prometheus_port, "Prometheus", "--prometheus-port"),),
        checks=(HttpCheck(f"{url}/-/ready"),),
        endpoints=(
            Endpoint("UI", f"{url}  (see /targets, /rules, /alerts)"),
            Endpoint("scrapes", ", ".join(f"{job} {' '.join(t)}" for job, t in targets.items())),
            Endpoint(
                "config",
                f"{display_path(config)}  (from {display_path(options.prometheus_config)})",
            ),
        ),
        drain_seconds=STOP_SECONDS,
        prepare=functools.partial(
            write_config,
            directory=options.prometheus_dir,
            targets=targets,
            labels=service_labels(scraped),
            interval_seconds=options.scrape_interval_seconds,
            source=options.prometheus_config,
        ),
        install_hint=INSTALL_HINT,
    )


def scrape_targets(options: StackOptions, scraped: Sequence[ServiceSpec]) -> dict[str, list[str]]:
    """host:port to scrape per job: each service with metrics, and the broker's plugin."""
    targets = {spec.name: [spec.metrics] for spec in scraped if spec.metrics is not None}
    broker_host = urlsplit(options.amqp_url).hostname or LOCALHOST
    targets[RABBITMQ_JOB] = [f"{broker_host}:{RABBITMQ_METRICS_PORT}"]
    return targets


def service_labels(scraped: Sequence[ServiceSpec]) -> dict[str, dict[str, str]]:
    """Target labels per job: the stand-in namespace on each service with metrics."""
    return {spec.name: {"namespace": LOCAL_NAMESPACE} for spec in scraped if spec.metrics}


def write_config(
    *,
    directory: Path,
    targets: Mapping[str, Sequence[str]],
    labels: Mapping[str, Mapping[str, str]],
    interval_seconds: float | None,
    source: Path,
) -> Path:
    """Write the targets and the config copy Prometheus is started with; the copy's path.

    `labels` maps a job to labels its targets carry (file_sd `labels`); jobs not in it
    get none.
    """
    config = _load(source)
    # Relative rule paths are resolved against the config's folder: keep the repository's.
    rule_files = config.get("rule_files") or []
    config["rule_files"] = [str(source.parent / pattern) for pattern in rule_files]
    if interval_seconds is not None:
        interval = _duration(interval_seconds)
        settings = config.setdefault("global", {})
        settings.update(scrape_interval=interval, evaluation_interval=interval)
        # Prometheus refuses a timeout longer than the interval; unset, it takes the shorter.
        settings.pop("scrape_timeout", None)
    target_dir = directory / "targets"
    target_dir.mkdir(parents=True, exist_ok=True)
    for job, addresses in targets.items():
        group: dict[str, Any] = {"targets": list(addresses)}
        if labels.get(job):
            group["labels"] = dict(labels[job])
        # Written whole and renamed, so Prometheus' file watch never reads half a file.
        _write_atomically(target_dir / f"{job}.json", json.dumps([group]))
    copy = directory / "prometheus.yml"
    header = f"# Written by `ordermesh up` from {source}: edit that file, not this one.\n"
    _write_atomically(copy, header + yaml.safe_dump(config, sort_keys=False))
    return copy


def _duration(seconds: float) -> str:
    """Seconds in Prometheus' duration syntax: `1s`, `250ms`."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def _load(source: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(source.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise StackError(f"cannot read the Prometheus config {source}: {exc}") from exc
    if not isinstance(config, dict):
        raise StackError(f"{source} is not a Prometheus config (no mapping at the top)")
    return config


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text)
    partial.replace(path)
