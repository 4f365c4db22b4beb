"""The back tiers' SQL is the orders service's, statement for statement."""

from __future__ import annotations

import inspect
import re

import orders.repository
import pytest

from bench.baselines import queries

STATEMENTS = (
    "GET_ORDER",
    "LIST_FIRST",
    "LIST_AFTER",
    "EXPORT",
    "CREATE",
    "REPLAY",
)


def _normal(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


@pytest.mark.parametrize("name", STATEMENTS)
def test_each_statement_is_in_the_orders_repository(name: str) -> None:
    # The typed export's SELECT is templated on its columns: `export` passes _ORDER_COLUMNS.
    source = (
        inspect.getsource(orders.repository)
        .replace("{_ORDER_COLUMNS}", queries.ORDER_COLUMNS)
        .replace("{columns}", queries.ORDER_COLUMNS)
    )
    assert _normal(getattr(queries, name)) in _normal(source)


def test_psycopg_spelling_keeps_the_placeholders_in_order() -> None:
    assert queries.pyformat(queries.LIST_AFTER).count("%s") == 4
    assert "$" not in queries.pyformat(queries.CREATE)
    assert queries.pyformat(queries.CREATE).count("%s") == 14  # each of $1..$14 once
