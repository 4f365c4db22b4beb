"""FastAPI exception handlers: every error leaves the API as problem details.

Validation errors become 422 with one entry per field, except two that are the
request's form rather than its content: malformed JSON and a missing or malformed
`Idempotency-Key` header are 400.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from gateway.problems import PROBLEM_CONTENT_TYPE, ApiError, error_body
from gateway.resilience import BudgetExhausted, CircuitOpen

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
_HTTP_TITLES: Final = {404: "Not found", 405: "Method not allowed"}


def problem_response(error: ApiError) -> Response:
    return Response(
        error_body(error),
        status_code=error.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=error.headers,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return problem_response(validation_problem(exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        title = _HTTP_TITLES.get(exc.status_code, "Error")
        slug = title.lower().replace(" ", "-")
        headers = dict(exc.headers or {})
        return problem_response(
            ApiError(exc.status_code, slug, title, str(exc.detail), headers=headers)
        )

    @app.exception_handler(BudgetExhausted)
    @app.exception_handler(CircuitOpen)
    @app.exception_handler(Exception)
    async def other_error(request: Request, exc: Exception) -> Response:
        return problem_response(problem_for(exc))


def problem_for(exc: Exception) -> ApiError:
    """The problem answered for an error a handler raised (the read route's too)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, BudgetExhausted):
        return ApiError(504, "timeout", "Gateway timeout", "the request ran out of time")
    if isinstance(exc, CircuitOpen):
        retry_after = str(max(1, round(exc.retry_after)))
        return ApiError(
            503,
            "unavailable",
            "Service unavailable",
            f"{exc}; retry later",
            headers={"Retry-After": retry_after},
        )
    log.error("unhandled error", exc_info=exc)
    return ApiError(500, "internal", "Internal error", "an unexpected error; see the trace id")


def validation_problem(errors: Sequence[Any]) -> ApiError:
    """The problem for FastAPI's validation errors (400 for a malformed request form)."""
    fields = [{"field": _field(e["loc"]), "message": e["msg"]} for e in errors]
    if any(e["type"] == "json_invalid" for e in errors):
        return ApiError(400, "malformed-body", "Malformed body", "the body is not valid JSON")
    if any(tuple(e["loc"][:2]) == ("header", IDEMPOTENCY_HEADER) for e in errors):
        return ApiError(
            400,
            "idempotency-key-invalid",
            "Idempotency-Key missing or malformed",
            "send an Idempotency-Key header of 1-255 printable ASCII characters",
        )
    return ApiError(422, "validation-failed", "Invalid request", "see errors", errors=fields)


def _field(location: Sequence[Any]) -> str:
    """`("body", "items", 0, "sku")` as `body.items[0].sku`."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
