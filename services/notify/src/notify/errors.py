"""Why handling an event failed, in the two kinds the consumer acts on.

A transient failure may go away by itself (database down, webhook timing out or
answering 5xx): the event is tried again later. A permanent one will not (the
webhook refuses the request with a 4xx): the event is dead-lettered at once.
"""

from __future__ import annotations


class NotifyError(Exception):
    """Base of every failure the notify service reports."""


class TransientFailure(NotifyError):
    """Trying again later may succeed."""


class PermanentFailure(NotifyError):
    """Trying again will fail the same way."""


class DatabaseUnavailable(TransientFailure):
    def __init__(self, cause: str) -> None:
        super().__init__(f"the notify database is unavailable ({cause})")
