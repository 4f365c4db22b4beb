"""Opaque cursors for keyset pagination on the notification id."""

from __future__ import annotations

import base64
import binascii
from typing import Final

_PREFIX: Final = "n1:"  # versioned, so the format can change without misreading old cursors


class InvalidCursor(ValueError):
    def __init__(self) -> None:
        super().__init__("is not a cursor this service issued; pass next_cursor back unchanged")


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id after which the next page starts; raises InvalidCursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor from None
    number = raw.removeprefix(_PREFIX)
    if number == raw or not number.isascii() or not number.isdigit() or len(number) > 19:
        raise InvalidCursor
    last_id = int(number)
    if encode_cursor(last_id) != cursor:  # one spelling per position: no padding, no zeros
        raise InvalidCursor
    return last_id
