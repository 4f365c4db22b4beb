"""JSON log lines: one object per line, with trace and span ids inside a span."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from servicekit.logs import JsonFormatter


def _capture(emit: Callable[[logging.Logger], None]) -> list[str]:
    """The lines a JsonFormatter writes for what `emit` logs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(service="demo"))
    logger = logging.getLogger("servicekit.test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().splitlines()


def _log_line(message: str, **extra: object) -> dict[str, object]:
    lines = _capture(lambda logger: logger.warning(message, extra=extra))
    assert len(lines) == 1
    parsed: dict[str, object] = json.loads(lines[0])
    return parsed


def test_a_line_has_the_standard_fields_and_extras() -> None:
    line = _log_line("hello %s", order_id="o-1")
    assert line["message"] == "hello %s"
    assert line["level"] == "WARNING"
    assert line["logger"] == "servicekit.test"
    assert line["service"] == "demo"
    assert line["order_id"] == "o-1"
    assert line["trace_id"] is None
    assert line["span_id"] is None


def test_ids_of_the_active_span_are_logged() -> None:
    context = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0x00F067AA0BA902B7,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with trace.use_span(NonRecordingSpan(context)):
        line = _log_line("inside")
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert line["span_id"] == "00f067aa0ba902b7"


def test_exceptions_stay_on_one_line() -> None:
    def emit(logger: logging.Logger) -> None:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")

    lines = _capture(emit)
    assert len(lines) == 1
    assert "ValueError: boom" in json.loads(lines[0])["exception"]
