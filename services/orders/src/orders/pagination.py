"""Opaque page tokens for keyset pagination on (created_at, id)."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from orders.errors import FieldViolation, ValidationFailed
from orders.repository import Position

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def encode_token(position: Position) -> str:
    created_at, order_id = position
    raw = f"{created_at.isoformat()}|{order_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> Position | None:
    """The position a token stands for; None for the empty token (first page)."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        created_at, order_id = raw.split("|")
        position = (datetime.fromisoformat(created_at), uuid.UUID(order_id))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationFailed(
            [FieldViolation("page_token", "is not a token this service issued")]
        ) from None
    if position[0].tzinfo is None:
        raise ValidationFailed([FieldViolation("page_token", "is not a token this service issued")])
    return position


def page_size(requested: int) -> int:
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= requested <= MAX_PAGE_SIZE:
        raise ValidationFailed(
            [FieldViolation("page_size", f"must be between 1 and {MAX_PAGE_SIZE} (0: default)")]
        )
    return requested
