"""Field limits of an order, shared by the gateway (public API) and orders (the rules).

The gateway refuses what breaks them before any call, orders enforces them itself;
keeping them here makes both say the same thing.
"""

from __future__ import annotations

import re
from typing import Final

MAX_ITEMS: Final = 100
MAX_SKU_LENGTH: Final = 64
MAX_CUSTOMER_ID_LENGTH: Final = 128
MAX_IDEMPOTENCY_KEY_LENGTH: Final = 255
MAX_QUANTITY: Final = 10_000
MAX_UNIT_PRICE_MINOR: Final = 100_000_000_000
# Text may hold any character but the C0/C1 controls (PostgreSQL cannot even store NUL).
NO_CONTROL_CHARACTERS: Final = r"^[^\x00-\x1f\x7f-\x9f]*$"
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None
