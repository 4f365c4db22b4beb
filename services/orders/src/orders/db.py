"""The orders database: servicekit.postgres with orders' name, migrations and error."""

from __future__ import annotations

from typing import Final

from servicekit.postgres import Connection, Database

from orders.errors import DatabaseUnavailable

__all__ = ["DATABASE", "Connection", "connection"]

DATABASE: Final = Database(
    application_name="ordermesh-orders", migrations="orders", unavailable=DatabaseUnavailable
)
# A pooled connection for the repository; connectivity errors become DatabaseUnavailable.
connection = DATABASE.connection
