"""The public API as Ordermesh's gateway defines it, for the baselines' front tiers.

Both front tiers take their request models, their bearer-token check and their error
answers from here, so they differ from each other only in how they run (threads or an
event loop, requests or httpx) and from Ordermesh only in their architecture. Limits,
patterns and the JWT defaults are Ordermesh's own constants, imported, never copied.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any, Final

import jwt
import orjson
from contracts.currencies import ISO_4217
from contracts.limits import (
    MAX_ITEMS,
    MAX_QUANTITY,
    MAX_SKU_LENGTH,
    MAX_UNIT_PRICE_MINOR,
    NO_CONTROL_CHARACTERS,
    has_control_characters,
)
from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from gateway.api import SUMMARY_NOTIFICATIONS as SUMMARY_NOTIFICATIONS  # notifications per summary
from gateway.auth import MAX_SUBJECT_LENGTH
from gateway.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE
from gateway.schemas import (
    DEFAULT_PAGE_SIZE,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_CURSOR_LENGTH,
    MAX_PAGE_SIZE,
    NotificationOut,
)
from gateway.settings import DEV_JWT_AUDIENCE, DEV_JWT_ISSUER, DEV_JWT_SECRET, GatewaySettings
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response

JSON: Final = "application/json"
NDJSON: Final = "application/x-ndjson"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
REPLAYED_HEADER: Final = "Idempotent-Replayed"
# The gateway's defaults: a request's budget, and the longest wait for notify in a summary.
REQUEST_TIMEOUT_SECONDS: Final[float] = GatewaySettings.model_fields[
    "request_budget_seconds"
].default
NOTIFY_TIMEOUT_SECONDS: Final[float] = GatewaySettings.model_fields[
    "notify_timeout_seconds"
].default
NOTIFICATION_FIELDS: Final = tuple(NotificationOut.model_fields)
# A lifespan yields the app's state (its pool or client), read back as request.state.
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Mapping[str, Any]]]
_DEFAULT_LEEWAY: Final[float] = GatewaySettings.model_fields["jwt_leeway_seconds"].default
_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="ordermesh"'}
_HTTP_TITLES: Final = {404: "Not found", 405: "Method not allowed"}


# --- bearer tokens: the gateway's HS256 check (gateway.auth), same claims and leeway ---


class Unauthorized(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class JwtCheck:
    secret: str
    issuer: str
    audience: str
    leeway_seconds: float

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> JwtCheck:
        """The gateway's variables and development defaults, so one token works everywhere."""
        return cls(
            secret=environ.get("GATEWAY_JWT_SECRET") or DEV_JWT_SECRET,
            issuer=environ.get("GATEWAY_JWT_ISSUER") or DEV_JWT_ISSUER,
            audience=environ.get("GATEWAY_JWT_AUDIENCE") or DEV_JWT_AUDIENCE,
            leeway_seconds=float(environ.get("GATEWAY_JWT_LEEWAY_SECONDS") or _DEFAULT_LEEWAY),
        )

    def subject(self, authorization: Sequence[str]) -> str:
        """The customer a request's `Authorization` header speaks for, else Unauthorized."""
        if len(authorization) > 1:
            raise Unauthorized("more than one Authorization header")
        scheme, _, token = (authorization[0] if authorization else "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing bearer token")
        try:
            # Like the gateway: the algorithm is checked before any verification.
            if jwt.get_unverified_header(token).get("alg") != "HS256":
                raise Unauthorized("algorithm not allowed")
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "iat", "sub"], "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError as error:
            raise Unauthorized(str(error) or type(error).__name__) from error
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH:
            raise Unauthorized("invalid subject")
        if has_control_characters(subject):
            raise Unauthorized("invalid subject")
        return subject


async def _customer(request: Request) -> str:
    # `async def` on purpose: FastAPI would run a plain `def` dependency in a worker thread.
    check: JwtCheck = request.app.state.jwt
    return check.subject(request.headers.getlist("authorization"))


Customer = Annotated[str, Depends(_customer)]
OrderId = Annotated[uuid.UUID, Path()]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(min_length=1, max_length=MAX_CURSOR_LENGTH)]
IdempotencyKey = Annotated[str, Header(alias=IDEMPOTENCY_HEADER, pattern=IDEMPOTENCY_KEY_PATTERN)]
DEFAULT_LIMIT: Final = DEFAULT_PAGE_SIZE


# --- the create request, with the gateway's limits (gateway.schemas) ---


def _known_currency(code: str) -> str:
    if code not in ISO_4217:
        raise ValueError(f"{code!r} is not an ISO 4217 code such as 'EUR'")
    return code


class LineItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Annotated[
        str, Field(min_length=1, max_length=MAX_SKU_LENGTH, pattern=NO_CONTROL_CHARACTERS)
    ]
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
    unit_price_minor: Annotated[int, Field(ge=0, le=MAX_UNIT_PRICE_MINOR)]


class CreateOrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: Annotated[str, AfterValidator(_known_currency)]
    items: Annotated[list[LineItemIn], Field(min_length=1, max_length=MAX_ITEMS)]


# --- answers ---


def json_response(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """RFC 9457 problem details, as the gateway sends them (no tracing here: no trace id)."""
    body = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "trace_id": None,
        **extra,
    }
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_CONTENT_TYPE, headers=headers
    )


def not_found(what: str = "order") -> Response:
    return problem(404, "not-found", "Not found", f"no such {what}")


def unavailable(what: str) -> Response:
    return problem(
        503,
        "unavailable",
        "Service unavailable",
        f"{what} is unavailable; retry later",
        headers={"Retry-After": "1"},
    )


def timed_out(what: str) -> Response:
    return problem(504, "timeout", "Gateway timeout", f"{what} did not answer in time")


def bad_gateway(what: str, status: int) -> Response:
    return problem(502, "bad-gateway", "Bad gateway", f"{what} failed ({status})")


def notifications_out(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The public fields of notify's notifications (gateway.schemas.notification_out)."""
    return [{name: n.get(name) for name in NOTIFICATION_FIELDS} for n in raw]


def summary_json(
    order: Any, notifications: list[dict[str, Any]], degraded_reason: str | None
) -> dict[str, Any]:
    return {
        "order": order,
        "notifications": notifications,
        "degraded": degraded_reason is not None,
        "degraded_reason": degraded_reason,
    }


def public_app(*, jwt_check: JwtCheck, lifespan: Lifespan) -> FastAPI:
    """A front tier's app: the token check, the gateway's error answers and /healthz."""
    app = build_app(lifespan)
    app.state.jwt = jwt_check

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized) -> Response:
        detail = f"a valid bearer token is required: {exc.reason}"
        return problem(401, "unauthorized", "Unauthorized", detail, headers=_CHALLENGE)

    return app


def build_app(lifespan: Lifespan) -> FastAPI:
    """A FastAPI app answering every error as problem details, with an open /healthz."""
    app = FastAPI(lifespan=lifespan)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return validation_problem(exc.errors())

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        title = _HTTP_TITLES.get(exc.status_code, "Error")
        slug = title.lower().replace(" ", "-")
        return problem(exc.status_code, slug, title, str(exc.detail), headers=exc.headers)

    @app.get("/healthz")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    return app


def validation_problem(errors: Sequence[Any]) -> Response:
    """400 for a malformed body or Idempotency-Key, else 422 naming each field."""
    if any(e["type"] == "json_invalid" for e in errors):
        return problem(400, "malformed-body", "Malformed body", "the body is not valid JSON")
    if any(tuple(e["loc"][:2]) == ("header", IDEMPOTENCY_HEADER) for e in errors):
        return problem(
            400,
            "idempotency-key-invalid",
            "Idempotency-Key missing or malformed",
            "send an Idempotency-Key header of 1-255 printable ASCII characters",
        )
    fields = [{"field": _field(e["loc"]), "message": e["msg"]} for e in errors]
    return problem(422, "validation-failed", "Invalid request", "see errors", errors=fields)


def _field(location: Sequence[Any]) -> str:
    """`("body", "items", 0, "sku")` as `body.items[0].sku`."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
