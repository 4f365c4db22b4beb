"""The one place where a gRPC status from orders becomes an HTTP problem.

INVALID_ARGUMENT 422 (with orders' field violations), NOT_FOUND 404,
FAILED_PRECONDITION and ALREADY_EXISTS 409, DEADLINE_EXCEEDED 504, UNAVAILABLE 503,
RESOURCE_EXHAUSTED 503, UNAUTHENTICATED/PERMISSION_DENIED 502 (the gateway's own
credentials were refused, never the caller's fault), anything else 502.
"""

from __future__ import annotations

from typing import Any, Final

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway.problems import ApiError

# Failures that say "orders is unwell" (they count towards its circuit breaker).
DOWNSTREAM_FAILURES: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)
_RETRY_AFTER: Final = {"Retry-After": "1"}


_CODES: Final = {code.value[0]: code for code in grpc.StatusCode}


def to_api_error(error: grpc.aio.AioRpcError, *, what: str = "order") -> ApiError:
    code = error.code()
    # Only INVALID_ARGUMENT carries details the problem shows.
    status = (
        rpc_status.from_call(error)  # type: ignore[arg-type]
        if code is grpc.StatusCode.INVALID_ARGUMENT
        else None
    )
    return _api_error(code, error.details() or code.name, status, what)


def status_to_api_error(status: status_pb2.Status, *, what: str = "order") -> ApiError:
    """The problem for one read's status inside a BatchGetOrders answer."""
    code = _CODES.get(status.code, grpc.StatusCode.UNKNOWN)
    return _api_error(code, status.message or code.name, status, what)


def _api_error(
    code: grpc.StatusCode, message: str, status: status_pb2.Status | None, what: str
) -> ApiError:
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        violations, reason = _details(status)
        if reason == "IDEMPOTENCY_KEY_REUSED":
            return ApiError(
                422,
                "idempotency-key-reused",
                "Idempotency key reused",
                "this Idempotency-Key was used for a different request body",
            )
        return ApiError(
            422, "validation-failed", "Invalid request", message, errors=violations or None
        )
    if code is grpc.StatusCode.NOT_FOUND:
        return ApiError(404, "not-found", "Not found", f"no such {what}")
    if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS):
        return ApiError(409, "conflict", "Conflict", message)
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return ApiError(504, "timeout", "Gateway timeout", "orders did not answer in time")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
        return ApiError(
            503,
            "unavailable",
            "Service unavailable",
            "orders is unavailable; retry later",
            headers=_RETRY_AFTER,
        )
    return ApiError(502, "bad-gateway", "Bad gateway", f"orders failed ({code.name})")


def _details(status: status_pb2.Status | None) -> tuple[list[dict[str, Any]], str | None]:
    """Field violations and the ErrorInfo reason carried in the google.rpc.Status."""
    violations: list[dict[str, Any]] = []
    reason = None
    for detail in status.details if status is not None else ():
        request = error_details_pb2.BadRequest()
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(request):  # False when the detail is of another type
            violations.extend(
                {"field": v.field, "message": v.description} for v in request.field_violations
            )
        elif detail.Unpack(info):
            reason = info.reason
    return violations, reason
