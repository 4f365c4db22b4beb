"""Jittered exponential backoff for the services' reconnect and retry loops.

Each delay is the current step times uniform(0.5, 1.5), so replicas that lost the
same database or broker at once do not all come back in the same instant.
"""

from __future__ import annotations

import random


class Backoff:
    """Jittered exponential delays: 0.2 s doubling to 5 s, each times uniform(0.5, 1.5)."""

    def __init__(self, first: float = 0.2, cap: float = 5.0) -> None:
        self._first, self._cap = first, cap
        self._delay = first

    def next(self) -> float:
        """The delay to wait now; the step after it doubles, up to the cap."""
        delay = self._delay * random.uniform(0.5, 1.5)
        self._delay = min(self._delay * 2, self._cap)
        return delay

    def reset(self) -> None:
        """Start again from the first delay (after a success)."""
        self._delay = self._first
