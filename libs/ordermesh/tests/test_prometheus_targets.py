"""The file_sd targets `ordermesh up` writes for Prometheus, read back as Prometheus would."""

from __future__ import annotations

import json
from pathlib import Path

from ordermesh.paths import PROMETHEUS_CONFIG
from ordermesh.prometheus import LOCAL_NAMESPACE, RABBITMQ_JOB
from ordermesh.services import service_specs
from ordermesh.stackspec import StackOptions


def written_targets(tmp_path: Path) -> dict[str, list[dict[str, object]]]:
    options = StackOptions(
        state_dir=tmp_path,
        prometheus_config=PROMETHEUS_CONFIG,
        environ={"AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/some-vhost"},
    )
    spec = next(s for s in service_specs(options) if s.name == "prometheus")
    assert spec.prepare is not None
    spec.prepare()
    folder = options.prometheus_dir / "targets"
    return {path.stem: json.loads(path.read_text()) for path in folder.glob("*.json")}


def test_every_service_target_carries_the_stand_in_namespace(tmp_path: Path) -> None:
    targets = written_targets(tmp_path)
    for job, port in (("orders", 8081), ("notify", 8082), ("gateway", 8080)):
        assert targets[job] == [
            {"targets": [f"127.0.0.1:{port}"], "labels": {"namespace": LOCAL_NAMESPACE}}
        ], job
    assert LOCAL_NAMESPACE == "local"  # the namespace tests render the chart into


def test_the_broker_target_has_no_namespace(tmp_path: Path) -> None:
    assert written_targets(tmp_path)[RABBITMQ_JOB] == [{"targets": ["127.0.0.1:15692"]}]
