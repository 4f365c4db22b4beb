"""Structured JSON logging: one line per event, with the active trace and span ids.

Configured once per process by `configure_logging`; every module then uses the
standard `logging.getLogger(__name__)`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from servicekit.telemetry import current_trace_ids

# Attributes every LogRecord has; anything else was passed in `extra=` and is logged.
# uvicorn adds an ANSI-coloured copy of each message as `color_message`: not for JSON.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def __init__(self, *, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        trace_id, span_id = current_trace_ids()
        event: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self._service,
            "trace_id": trace_id,
            "span_id": span_id,
        }
        event.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in _STANDARD_ATTRS and not key.startswith("_")
        )
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str, ensure_ascii=False)


def configure_logging(*, service: str, level: str) -> None:
    """Send every logger's output to stderr as JSON lines at `level` and above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service=service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Per-request access lines would dominate the output; the metrics cover them.
    logging.getLogger("uvicorn.access").disabled = True
