"""Tracing bootstrap. For now only the read side: the ids of the active span.

The observability work plugs the OpenTelemetry SDK in here; the rest of the code
already goes through the OpenTelemetry API, so nothing else changes then.
"""

from __future__ import annotations

from opentelemetry import trace


def current_trace_ids() -> tuple[str | None, str | None]:
    """(trace_id, span_id) of the active span as hex, or (None, None) outside one."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
