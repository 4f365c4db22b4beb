"""An order's public JSON, rendered straight from an export row, for the NDJSON export.

The gateway renders the same shape from protobuf (gateway.convert.order_json) for single
reads; tests/test_export_contract.py keeps the two byte-identical. Going from the row to
orjson directly skips a domain object and a protobuf message per order, which is what
made the export cost ten times a COPY of the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

import orjson

from orders.domain import OrderStatus

# An export row holds repository.EXPORT_ROW_COLUMNS: id (text), customer_id, status,
# currency, total_minor, items (the jsonb as text), created_at and updated_at (UTC text
# with six fraction digits, "2025-01-01T10:00:00.123456Z").
ExportRow = Iterable[Any]  # an asyncpg.Record, or a tuple in tests

# The public status names are the stored values; the lookup fails loudly on anything else.
_STATUS: Final = {status.value: status.value for status in OrderStatus}
_dumps: Final = orjson.dumps
_loads: Final = orjson.loads
_LINE: Final = orjson.OPT_APPEND_NEWLINE


def ndjson_chunks(rows: Sequence[ExportRow], *, max_bytes: int) -> Iterator[bytes]:
    """The rows as NDJSON, one order per line, in chunks of whole lines of at most
    `max_bytes` each (a single longer line is a chunk of its own)."""
    # One comprehension, no call per row: this is the export's hot loop. A timestamp
    # goes out as is unless its microseconds are a multiple of 1000 (_stamp).
    lines = [
        _dumps(
            {
                "id": order_id,
                "customer_id": customer_id,
                "status": _STATUS[status],
                "currency": currency,
                "total_minor": total_minor,
                # Rebuilt, not passed through: the field order is the public shape's,
                # whatever the order of keys in jsonb.
                "items": [
                    {
                        "sku": item["sku"],
                        "quantity": item["quantity"],
                        "unit_price_minor": item["unit_price_minor"],
                    }
                    for item in _loads(items)
                ],
                "created_at": _stamp(created) if created.endswith("000Z") else created,
                "updated_at": _stamp(updated) if updated.endswith("000Z") else updated,
            },
            option=_LINE,
        )
        for order_id, customer_id, status, currency, total_minor, items, created, updated in rows
    ]
    if sum(map(len, lines)) <= max_bytes:
        if lines:
            yield b"".join(lines)
        return
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if chunk and size + len(line) > max_bytes:
            yield b"".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    yield b"".join(chunk)


def _stamp(text: str) -> str:
    """A six-digit timestamp whose microseconds are a multiple of 1000, as protobuf's
    Timestamp JSON writes it: no fraction for whole seconds, else milliseconds."""
    if text.endswith(".000000Z"):
        return text[:-8] + "Z"
    return text[:-4] + "Z"
