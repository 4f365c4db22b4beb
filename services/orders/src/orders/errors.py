"""Domain errors of the orders service.

They say what went wrong in domain terms; `grpc_errors.py` is the one place that
maps them to gRPC status codes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str  # path into the request, e.g. "items[2].quantity"
    description: str


class OrdersError(Exception):
    """Base of every error the orders service reports to its callers."""


class ValidationFailed(OrdersError):
    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))


class IdempotencyKeyReused(OrdersError):
    def __init__(self) -> None:
        super().__init__(
            "idempotency_key was already used by this customer for a different request; "
            "use a new key for a new order"
        )


class OrderNotFound(OrdersError):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} not found")


class IllegalTransition(OrdersError):
    def __init__(self, order_id: str, current: str, target: str) -> None:
        self.current, self.target = current, target
        super().__init__(f"order {order_id} is {current} and cannot become {target}")


class DatabaseUnavailable(OrdersError):
    def __init__(self, cause: str) -> None:
        super().__init__(f"the orders database is unavailable ({cause}); retry later")
