"""The notify database: servicekit.postgres with notify's name, migrations and error."""

from __future__ import annotations

from typing import Final

from servicekit.postgres import Database

from notify.errors import DatabaseUnavailable

DATABASE: Final = Database(
    application_name="ordermesh-notify", migrations="notify", unavailable=DatabaseUnavailable
)
# A pooled connection for the repository; connectivity errors become DatabaseUnavailable.
connection = DATABASE.connection
create_pool = DATABASE.create_pool
