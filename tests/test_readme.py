"""The README stays true: its configuration table and the commands it promises."""

from __future__ import annotations

import shlex
from pathlib import Path

from ordermesh.config_table import render_config_table

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
CI_SCRIPT = REPO_ROOT / ".ci" / "run"
START = "<!-- config-table:start -->"
END = "<!-- config-table:end -->"


def _config_section(text: str) -> str:
    assert text.count(START) == 1, f"README.md needs exactly one {START} marker"
    assert text.count(END) == 1, f"README.md needs exactly one {END} marker"
    _, _, rest = text.partition(START)
    section, _, _ = rest.partition(END)
    return section


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
