"""Problem details (RFC 9457): the one shape of every error the gateway answers.

Each body has a stable ``type`` URI (part of the public API: a slug, once published,
never changes), a short ``title``, the ``status``, a ``detail`` written for a person,
and the ``trace_id`` of the request so a report can be matched to logs and traces.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from servicekit.telemetry import current_trace_ids

PROBLEM_TYPE_BASE: Final = "https://ordermesh.dev/problems/"
PROBLEM_CONTENT_TYPE: Final = "application/problem+json"


class ApiError(Exception):
    """An error answered as problem details; raised by handlers and the downstream clients."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_body(status: int, slug: str, title: str, detail: str, **extra: Any) -> bytes:
    """The JSON body of a problem, with the current trace id."""
    trace_id, _ = current_trace_ids()
    body = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "trace_id": trace_id,
        **extra,
    }
    return orjson.dumps(body)


def error_body(error: ApiError) -> bytes:
    return problem_body(error.status, error.slug, error.title, error.detail, **error.extra)
