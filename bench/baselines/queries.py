"""The SQL of both back tiers: the orders service's statements (orders.repository), verbatim.

Written with asyncpg's `$n` placeholders; `pyformat` gives psycopg's `%s` spelling of
the same statement (each placeholder appears once, in order, so positions carry over).
Same tables, same indexes, same statements: a read or a create costs PostgreSQL what
it costs under Ordermesh.
"""

from __future__ import annotations

import re
from typing import Final

ORDER_COLUMNS: Final = (
    "id, customer_id, status, currency, total_minor, items, created_at, updated_at"
)

GET_ORDER: Final = f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 AND customer_id = $2"

LIST_FIRST: Final = f"""SELECT {ORDER_COLUMNS} FROM orders WHERE customer_id = $1
    ORDER BY created_at DESC, id DESC LIMIT $2"""

LIST_AFTER: Final = f"""SELECT {ORDER_COLUMNS} FROM orders
    WHERE customer_id = $1 AND (created_at, id) < ($2, $3)
    ORDER BY created_at DESC, id DESC LIMIT $4"""

EXPORT: Final = f"""SELECT {ORDER_COLUMNS} FROM orders WHERE customer_id = $1
    ORDER BY created_at, id"""

# The create: one statement claims the key (a concurrent duplicate waits on this row)
# and writes the order and its outbox event; no row back means the key exists, and
# REPLAY reads the order it points to.
CREATE: Final = """
WITH claimed AS (
    INSERT INTO idempotency_keys
        (customer_id, idempotency_key, request_hash, order_id, expires_at)
    VALUES ($1, $2, $3, $4, now() + $5::interval)
    ON CONFLICT (customer_id, idempotency_key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, order_id = EXCLUDED.order_id,
            created_at = now(), expires_at = EXCLUDED.expires_at
        WHERE idempotency_keys.expires_at <= now()
    RETURNING order_id, customer_id
), created AS (
    INSERT INTO orders (id, customer_id, status, currency, total_minor, items,
                        created_at, updated_at)
    SELECT order_id, customer_id, $6, $7, $8, $9, at, at
    FROM claimed, (SELECT $10::timestamptz AS at) AS clock
    RETURNING id
)
INSERT INTO outbox (event_id, event_type, aggregate_id, payload, headers)
SELECT $11, $12, id, $13, $14 FROM created
RETURNING aggregate_id
"""

REPLAY: Final = """SELECT k.request_hash, o.id, o.customer_id, o.status, o.currency, o.total_minor,
        o.items, o.created_at, o.updated_at
    FROM idempotency_keys k JOIN orders o ON o.id = k.order_id
    WHERE k.customer_id = $1 AND k.idempotency_key = $2"""

_PLACEHOLDER: Final = re.compile(r"\$\d+")


def pyformat(statement: str) -> str:
    """The statement with psycopg's placeholders."""
    return _PLACEHOLDER.sub("%s", statement)
