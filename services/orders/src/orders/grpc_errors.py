"""The one place where domain errors become gRPC statuses, with google.rpc details.

Every RPC body runs inside `rpc_scope`, which also enforces the deadline: the work
gets the caller's remaining time (capped for unary calls), and when it runs out the
task is cancelled, which cancels the query on the PostgreSQL server too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from servicekit.telemetry import current_trace_ids

from orders.errors import (
    DatabaseUnavailable,
    IdempotencyKeyReused,
    IllegalTransition,
    OrderNotFound,
    OrdersError,
    ValidationFailed,
)

log = logging.getLogger(__name__)

ERROR_DOMAIN = "orders.ordermesh"


@contextlib.asynccontextmanager
async def rpc_scope(
    context: grpc.aio.ServicerContext[Any, Any], *, max_seconds: float | None
) -> AsyncIterator[None]:
    """Run an RPC body within its deadline and report its errors as gRPC statuses."""
    limits = (context.time_remaining(), max_seconds)
    budget = min((t for t in limits if t is not None), default=None)
    try:
        async with asyncio.timeout(budget):
            yield
    except OrdersError as exc:
        status = rpc_status.to_status(to_status_proto(exc))
        await context.abort(status.code, status.details, status.trailing_metadata)
    except TimeoutError:
        await context.abort(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"deadline of {budget:.3f}s exceeded; the work was cancelled",
        )
    except grpc.aio.AbortError:
        raise
    except Exception:
        trace_id, _ = current_trace_ids()
        log.exception("unexpected error in RPC")
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error (trace id {trace_id})")


def to_status_proto(exc: OrdersError) -> status_pb2.Status:
    """The google.rpc.Status for a domain error."""
    match exc:
        case ValidationFailed(violations=violations):
            request = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in violations
                ]
            )
            return _status(code_pb2.INVALID_ARGUMENT, str(exc), request)
        case IdempotencyKeyReused():
            violation = error_details_pb2.BadRequest.FieldViolation(
                field="idempotency_key", description=str(exc)
            )
            return _status(
                code_pb2.INVALID_ARGUMENT,
                str(exc),
                error_details_pb2.BadRequest(field_violations=[violation]),
                _info("IDEMPOTENCY_KEY_REUSED"),
            )
        case OrderNotFound():
            return _status(code_pb2.NOT_FOUND, str(exc))
        case IllegalTransition(current=current, target=target):
            info = _info("ILLEGAL_TRANSITION", current=current, target=target)
            return _status(code_pb2.FAILED_PRECONDITION, str(exc), info)
        case DatabaseUnavailable():
            return _status(code_pb2.UNAVAILABLE, str(exc))
    return _status(code_pb2.INTERNAL, "unmapped error")


def _info(reason: str, **metadata: str) -> error_details_pb2.ErrorInfo:
    return error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata)


def _status(code: int, message: str, *details: Any) -> status_pb2.Status:
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    return status_pb2.Status(code=code, message=message, details=packed)
