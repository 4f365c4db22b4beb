"""The README stays true: its configuration and metrics tables and the commands it promises."""

from __future__ import annotations

import shlex
from pathlib import Path

from ordermesh.config_table import render_config_table
from ordermesh.metrics_table import render_metrics_table

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
CI_SCRIPT = REPO_ROOT / ".ci" / "run"
START = "<!-- config-table:start -->"
END = "<!-- config-table:end -->"


def _config_section(text: str, start: str = START, end: str = END) -> str:
    assert text.count(start) == 1, f"README.md needs exactly one {start} marker"
    assert text.count(end) == 1, f"README.md needs exactly one {end} marker"
    _, _, rest = text.partition(start)
    section, _, _ = rest.partition(end)
    return section


def test_metrics_table_matches_the_instruments() -> None:
    start, end = "<!-- metrics-table:start -->", "<!-- metrics-table:end -->"
    section = _config_section(README.read_text(), start, end)
    assert section.strip() == render_metrics_table().strip(), (
        "the metrics table in README.md is out of date: run `ordermesh metrics-table` "
        f"and paste its output between {start} and {end}"
    )
    table = render_metrics_table()
    # Counters are listed under the name Prometheus exposes, with _total.
    assert "| `ordermesh_gateway_shed_total` | counter | - | gateway |" in table
    assert "`method`, `route`, `status_class`" in table


def test_config_table_matches_the_settings_classes() -> None:
    section = _config_section(README.read_text())
    assert section.strip() == render_config_table().strip(), (
        "the configuration table in README.md is out of date: run `ordermesh config-table` "
        f"and paste its output between {START} and {END}"
    )


def test_config_table_lists_every_setting() -> None:
    # A sanity check of the renderer itself, independent of the README.
    table = render_config_table()
    assert "| orders | `ORDERS_DATABASE_URL` | `postgresql://postgres@127.0.0.1:5432/orders` |" in (
        table
    )
    assert "`ORDERS_ENVIRONMENT` | `production` |" in table  # inherited from ServiceSettings
    assert render_config_table() == table  # deterministic


def test_readme_names_the_two_commands() -> None:
    text = README.read_text()
    for command in ("make up", "make test"):
        assert f"`{command}`" in text, f"README.md should name `{command}`"


def test_ci_runs_make_test() -> None:
    assert CI_SCRIPT.is_file(), f"{CI_SCRIPT.relative_to(REPO_ROOT)} is missing"
    assert any(_runs_make_test(line) for line in CI_SCRIPT.read_text().splitlines()), (
        ".ci/run should run `make test`, the same command the README tells developers to use"
    )


def _runs_make_test(line: str) -> bool:
    """True for a shell line that invokes make with the `test` target."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return False
    for index, word in enumerate(words):
        if word == "make" or word.endswith("/make"):
            return "test" in words[index + 1 :]
    return False
