"""The dashboards and Prometheus rules as code stay valid, tested and in step with the code.

promtool checks the rule files and runs their unit tests; the committed dashboard JSON
must be what `ordermesh.dashboards` builds; and every expression may name only metrics
and labels that exist (the README's metrics table, generated from the instruments, is
the reference), so a typo fails here, before the live test (tests/test_live_metrics.py)
would report the query as empty.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ordermesh.cli import main
from ordermesh.dashboards import DASHBOARD_DIR, DASHBOARDS, rendered, stale, write

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
OBSERVABILITY_DOC = REPO_ROOT / "docs" / "observability.md"
RULES_DIR = REPO_ROOT / "observability" / "prometheus" / "rules"
RULE_FILES = (RULES_DIR / "recording.yml", RULES_DIR / "alerts.yml")
PROMTOOL_TESTS_DIR = REPO_ROOT / "observability" / "prometheus" / "tests"

# Metrics from outside the README's table that expressions may use, with their labels.
RABBITMQ_METRICS = frozenset(
    {
        "rabbitmq_detailed_queue_messages",
        "rabbitmq_detailed_queue_messages_ready",
        "rabbitmq_detailed_queue_messages_unacked",
        "rabbitmq_detailed_queue_consumers",
    }
)
PROCESS_METRICS = frozenset({"process_resident_memory_bytes", "process_cpu_seconds_total"})
TARGET_LABELS = frozenset({"job", "instance"})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_VARIABLE = re.compile(r"\$\{?[A-Za-z_]\w*|\[\[\w+\]\]")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is not on PATH: it checks and unit-tests the Prometheus rules "
            "(on Debian/Ubuntu: apt-get install prometheus)"
        )
    return found


def run_promtool(*args: str) -> None:
    result = subprocess.run(
        [promtool(), *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, (
        f"promtool {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    )


def readme_metrics() -> dict[str, frozenset[str]]:
    """Every series name the services export (histogram parts included) → its labels."""
    row = re.compile(r"^\| `([a-z_]+)` \| (\w+) \| ([^|]+) \|", re.MULTILINE)
    names: dict[str, frozenset[str]] = {}
    for name, kind, label_cell in row.findall(README.read_text()):
        labels = frozenset(re.findall(r"`(\w+)`", label_cell)) | TARGET_LABELS
        if kind == "histogram":
            names[f"{name}_bucket"] = labels | {"le"}
            names[f"{name}_count"] = labels
            names[f"{name}_sum"] = labels
        else:
            names[name] = labels
    assert len(names) > 20, "could not read the metrics table in README.md"
    return names


def rule_groups(path: Path) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(path.read_text())["groups"]
    return groups


def rules(path: Path) -> Iterator[dict[str, Any]]:
    for group in rule_groups(path):
        yield from group["rules"]


def recording_rule_names() -> set[str]:
    return {rule["record"] for rule in rules(RULES_DIR / "recording.yml")}


def dashboard_targets() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(file name, panel, target) of every target in every committed dashboard."""
    for name in DASHBOARDS:
        board = json.loads((DASHBOARD_DIR / f"{name}.json").read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield f"{name}.json", panel, target


def metric_problems(expr: str, *, allowed_records: set[str]) -> list[str]:
    """Metric names or matcher labels in `expr` that nothing exports."""
    known = readme_metrics()
    bare = _STRING.sub('""', expr)  # label values may contain anything, even `{`
    problems = []
    for token in set(_IDENTIFIER.findall(bare)):
        if ":" in token:
            if token not in allowed_records:
                problems.append(f"{token} is not a recording rule here")
        elif token.startswith("ordermesh_") and token not in known:
            problems.append(f"{token} is not in README.md's metrics table")
        elif token.startswith("rabbitmq_") and token not in RABBITMQ_METRICS:
            problems.append(f"{token} is not one of the RabbitMQ metrics used")
        elif token.startswith("process_") and token not in PROCESS_METRICS:
            problems.append(f"{token} is not one of the process metrics used")
    for metric, matchers in _SELECTOR.findall(bare):
        if metric in known:
            labels = known[metric]
        elif metric in RABBITMQ_METRICS:
            labels = TARGET_LABELS | {"vhost", "queue"}
        elif metric in PROCESS_METRICS or metric == "up":
            labels = TARGET_LABELS
        else:
            continue  # a recording rule: its labels are checked where it is defined
        problems.extend(
            f"{metric} has no label {label!r}"
            for label in _MATCHER_LABEL.findall(matchers)
            if label not in labels
        )
    return problems


def test_rule_files_pass_promtool_check() -> None:
    run_promtool("check", "rules", *(str(path) for path in RULE_FILES))


def test_rule_unit_tests_pass() -> None:
    tests = sorted(PROMTOOL_TESTS_DIR.glob("*.test.yml"))
    assert len(tests) >= 3, f"expected the promtool tests in {PROMTOOL_TESTS_DIR}"
    run_promtool("test", "rules", *(str(path) for path in tests))


def test_committed_dashboards_match_the_code() -> None:
    assert not stale(), (
        "observability/grafana/dashboards differs from ordermesh.dashboards: "
        "run `ordermesh dashboards` and commit the JSON"
    )
    assert main(["dashboards", "--check"]) == 0


def test_drift_is_detected(tmp_path: Path) -> None:
    assert {path.name for path in stale(tmp_path)} == set(rendered())  # missing files
    write(tmp_path)
    assert stale(tmp_path) == []
    edited = tmp_path / "gateway.json"
    edited.write_text(edited.read_text().replace("Ordermesh / Gateway", "Gateway (edited)"))
    assert stale(tmp_path) == [edited]


def test_dashboards_are_stable_json_with_fixed_uids() -> None:
    uids = set()
    for name, text in rendered().items():
        board = json.loads(text)
        assert text == json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert board["uid"] == f"ordermesh-{name.removesuffix('.json')}"
        uids.add(board["uid"])
        (variable,) = board["templating"]["list"]
        assert (variable["name"], variable["type"], variable["query"]) == (
            "datasource",
            "datasource",
            "prometheus",
        )
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{name}: {panel['title']} is off the grid"
    assert len(uids) == len(DASHBOARDS) == 5


def test_every_target_has_an_expr_a_ref_id_and_no_other_variable() -> None:
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    count = 0
    for name, panel, target in dashboard_targets():
        where = f"{name}: {panel['title']}"
        assert panel["datasource"] == datasource, where
        assert target.get("datasource") == datasource, where
        assert target.get("expr", "").strip(), f"{where}: a target without expr"
        assert re.fullmatch(r"[A-Z]", target.get("refId", "")), f"{where}: refId"
        variables = set(_VARIABLE.findall(target["expr"])) - {"$__rate_interval"}
        assert not variables, f"{where}: {variables} in {target['expr']}"
        count += 1
    assert count > 50


def test_dashboards_query_only_exported_metrics() -> None:
    # Never a recording rule either: dashboards must work on a Prometheus without them.
    problems = [
        f"{name}: {panel['title']}: {problem}"
        for name, panel, target in dashboard_targets()
        for problem in metric_problems(target["expr"], allowed_records=set())
    ]
    assert not problems, "\n".join(problems)


def test_rules_query_only_exported_metrics_and_defined_records() -> None:
    records = recording_rule_names()
    problems = [
        f"{path.name}: {rule.get('record') or rule.get('alert')}: {problem}"
        for path in RULE_FILES
        for rule in rules(path)
        for problem in metric_problems(rule["expr"], allowed_records=records)
    ]
    assert not problems, "\n".join(problems)


def test_metric_check_catches_typos() -> None:
    # The checker itself: it must not wave a misspelt metric, label or record through.
    assert (
        metric_problems(
            'sum(rate(ordermesh_gateway_shed_total{job="g"}[1m]))', allowed_records=set()
        )
        == []
    )
    assert metric_problems("ordermesh_gateway_shedded_total", allowed_records=set())
    assert metric_problems(
        'ordermesh_http_server_requests_in_flight{route="/"}', allowed_records=set()
    )
    assert metric_problems("job:ordermesh_gateway_errors:ratio_rate5m", allowed_records=set())
    assert metric_problems('rabbitmq_queue_messages{queue="x"}', allowed_records=set())


def test_recording_rules_follow_the_naming_convention() -> None:
    names = [rule["record"] for rule in rules(RULES_DIR / "recording.yml")]
    assert len(names) == len(set(names)), "a recording rule is defined twice"
    for name in names:
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", name), name
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
        assert f"job:ordermesh_gateway_errors:ratio_rate{window}" in names
        assert f"job:ordermesh_gateway_slow_requests:ratio_rate{window}" in names


def test_alerts_have_severity_annotations_and_a_runbook_section() -> None:
    headings = re.findall(r"^#+ (.+)$", OBSERVABILITY_DOC.read_text(), re.MULTILINE)
    anchors = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
    alerts = list(rules(RULES_DIR / "alerts.yml"))
    assert {rule["alert"] for rule in alerts} >= {
        "GatewayAvailabilityFastBurn",
        "GatewayAvailabilitySlowBurn",
        "GatewayLatencyFastBurn",
        "GatewayLatencySlowBurn",
        "OutboxBacklogOld",
        "DeadLetterQueueNotEmpty",
        "NotifyConsumerLag",
        "NotifyBacklogGrowing",
        "ServiceDown",
    }
    for rule in alerts:
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), name
        assert annotations["description"].strip(), name
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert page == "docs/observability.md", name
        assert anchor in anchors, f"{name}: no heading for #{anchor} in {OBSERVABILITY_DOC}"
