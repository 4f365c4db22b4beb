"""Named crash points for crash tests: the process kills itself where a test says so.

A crash test sets the names it wants (ORDERS_FAILPOINTS, for orders) and the code calls
`failpoints.hit(name)` at each point. An enabled point sends SIGKILL to the process
itself: a real crash, with no cleanup, no finally blocks and no goodbye to the database
or the broker. With nothing enabled, which is the production default, a hit is one
set lookup. `parse_names` is the settings validator that reads the names.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Iterable

log = logging.getLogger(__name__)


class Failpoints:
    """The crash points enabled in this process (none by default)."""

    __slots__ = ("_enabled",)

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._enabled = frozenset(names)
        if self._enabled:
            log.warning("failpoints enabled", extra={"failpoints": sorted(self._enabled)})

    @property
    def enabled(self) -> frozenset[str]:
        return self._enabled

    def hit(self, name: str) -> None:
        """Kill the process at once with SIGKILL if `name` is enabled."""
        if name in self._enabled:
            log.critical("failpoint hit, killing the process", extra={"failpoint": name})
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def parse_names(value: object, *, known: frozenset[str]) -> object:
    """Read `a,b` or `["a", "b"]` (or a collection) as a frozenset; refuse unknown names.

    For a `mode="before"` validator on a settings field typed
    `Annotated[frozenset[str], NoDecode]`, so a typo stops the process at start-up
    instead of quietly disabling a crash test. Anything else is left to pydantic.
    """
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else text.split(",")
    if isinstance(value, list | tuple | set | frozenset):
        names = {str(name).strip() for name in value} - {""}
        unknown = names - known
        if unknown:
            raise ValueError(f"unknown failpoints {sorted(unknown)}; known: {sorted(known)}")
        return frozenset(names)
    return value
