"""Tokens already verified, so a client's next request with the same token skips PyJWT.

A client sends one token for minutes of requests, and verifying it is the gateway's
costliest step per request: PyJWT parses the header and claims and, for HS256,
JSON-decodes the secret on every call (its guard against JWKs posing as secrets),
about a sixth of a read's CPU in a profile of GET /v1/orders/{id}. The key is the
whole token, signature included, so only a string that verified before can hit; what
changes with time (exp, nbf, iat) is checked on every hit with the same leeway, and
nothing that failed is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Generic, TypeVar

P = TypeVar("P")

DEFAULT_CAPACITY: Final = 10_000  # ~1 KiB each: ~10 MiB at most


@dataclass(frozen=True, slots=True)
class _Entry(Generic[P]):
    principal: P
    valid_from: float  # nbf / iat minus the leeway
    valid_until: float  # exp plus the leeway


class VerifiedTokens(Generic[P]):
    """A bounded map of token -> principal with its validity window, oldest out first."""

    def __init__(self, *, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._entries: dict[str, _Entry[P]] = {}

    def get(self, token: str, *, now: float) -> P | None:
        """The principal of a token verified before and still valid at `now`."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        if not entry.valid_from <= now < entry.valid_until:
            del self._entries[token]  # verified again: PyJWT says why it fails
            return None
        return entry.principal

    def put(self, token: str, principal: P, *, valid_from: float, valid_until: float) -> None:
        if len(self._entries) >= self._capacity:
            del self._entries[next(iter(self._entries))]  # dicts keep insertion order
        self._entries[token] = _Entry(principal, valid_from, valid_until)

    def clear(self) -> None:
        """Forget every token: the keys changed, so each must be verified again."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
