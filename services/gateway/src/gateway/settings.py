"""Settings of the gateway (environment variables prefixed GATEWAY_).

Grouped as: where it listens, where its downstreams are, the per-request budget,
bearer-token authentication (gateway.auth), and the protective limits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict
from servicekit.settings import ServiceSettings

# The signature algorithms a token may use; `none` is deliberately not one of them.
JwtAlgorithm = Literal["HS256", "RS256", "ES256"]
ASYMMETRIC_ALGORITHMS: Final = frozenset({"RS256", "ES256"})
# At least 32 bytes: RFC 7518 wants an HS256 key as long as the hash, and PyJWT warns
# (or, as gateway.auth asks it to, refuses) below that.
DEV_JWT_SECRET: Final = "dev-secret-change-me-not-for-production"  # noqa: S105 (refused outside development)
MIN_HS256_SECRET_BYTES: Final = 32
DEV_JWT_ISSUER: Final = "ordermesh-dev"
DEV_JWT_AUDIENCE: Final = "ordermesh-api"

# servicekit refuses exact placeholders only; a secret that merely contains one of
# these (such as the development default) is refused too.
_PLACEHOLDER_MARKERS: Final = ("change-me", "changeme")


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    http_host: str = Field(default="0.0.0.0", description="address the public API binds")
    http_port: int = Field(default=8080, ge=0, le=65535, description="port of the public API")
    orders_target: str = Field(
        default="127.0.0.1:50051", min_length=1, description="gRPC address of orders (host:port)"
    )
    notify_url: str = Field(
        default="http://127.0.0.1:8082",
        pattern=r"^https?://",
        description="base URL of notify's HTTP API",
    )
    request_budget_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="deadline of a request; every downstream call gets what is left of it",
    )
    notify_timeout_seconds: float = Field(
        default=0.5,
        gt=0,
        le=30,
        description="longest wait for notify in a summary before answering degraded",
    )
    export_seconds: float = Field(
        default=300.0, gt=0, le=3600, description="deadline of one NDJSON export stream"
    )
    breaker_failures: int = Field(
        default=5, ge=1, le=1000, description="consecutive failures that open a circuit"
    )
    breaker_reset_seconds: float = Field(
        default=5.0, gt=0, le=300, description="how long an open circuit fails fast"
    )
    max_in_flight: int = Field(
        default=256, ge=1, description="requests handled at once; beyond it they queue"
    )
    read_calls_in_flight: int = Field(
        default=4,
        ge=1,
        le=1024,
        description="reads by id out to orders at once; later ones wait and go as one batch",
    )
    write_calls_in_flight: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="creates and cancels out to orders at once; later ones wait their turn "
        "(within the request budget)",
    )
    direct_reads: bool = Field(
        default=True,
        description="answer GET /v1/orders/{id} ahead of FastAPI: the same answers for "
        "less CPU (gateway.read_route); false measures the difference",
    )
    read_batch_max: int = Field(
        default=64, ge=1, le=100, description="reads by id in one BatchGetOrders call"
    )
    max_queued: int = Field(
        default=1024, ge=0, description="requests waiting for a slot; beyond it a fast 503"
    )
    max_queue_seconds: float = Field(
        default=2.0, gt=0, le=60, description="longest wait for a slot before a 503"
    )
    max_body_bytes: int = Field(
        default=65_536, ge=1, description="largest request body accepted (else 413)"
    )
    rate_limit_per_second: float = Field(
        default=100.0, gt=0, description="requests per second per subject, in each replica"
    )
    rate_limit_burst: int = Field(
        default=200, ge=1, description="requests a subject may send at once, in each replica"
    )
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("localhost", "127.0.0.1", "[::1]"),
        min_length=1,
        description="Host names served, comma-separated (* for any); others get 400",
    )
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="browser origins allowed by CORS, comma-separated (none by default)",
    )

    jwt_algorithms: Annotated[tuple[JwtAlgorithm, ...], NoDecode] = Field(
        default=("HS256",),
        min_length=1,
        description="signature algorithms a bearer token may use, comma-separated "
        "(HS256, RS256, ES256; never none)",
    )
    jwt_secret: SecretStr = Field(
        default=SecretStr(DEV_JWT_SECRET),
        description="shared secret (at least 32 bytes) that verifies HS256 tokens",
    )
    jwt_jwks_file: Path | None = Field(
        default=None,
        description="JSON Web Key Set file with the public keys (by kid) for RS256/ES256",
    )
    jwt_jwks_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="URL of the identity provider's JSON Web Key Set, fetched at start "
        "and refreshed (instead of jwt_jwks_file)",
    )
    jwt_jwks_refresh_seconds: float = Field(
        default=300.0, ge=10, le=86_400, description="how often the JWKS URL is fetched again"
    )
    jwt_jwks_refetch_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="least time between two fetches caused by tokens with unknown key ids",
    )
    jwt_issuer: str = Field(
        default=DEV_JWT_ISSUER, min_length=1, description="required `iss` claim of a token"
    )
    jwt_audience: str = Field(
        default=DEV_JWT_AUDIENCE, min_length=1, description="required `aud` claim of a token"
    )
    jwt_leeway_seconds: float = Field(
        default=30.0,
        ge=0,
        le=300,
        description="clock skew allowed when checking `exp`, `nbf` and `iat`",
    )

    @field_validator("allowed_hosts", "cors_origins", mode="before")
    @classmethod
    def _parse_list(cls, value: object) -> object:
        return _split(value)

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _parse_algorithms(cls, value: object) -> object:
        names = _split(value)
        if isinstance(names, tuple):
            # Upper-casing would turn "none" into "NONE"; name it in the error instead.
            if any(name.lower() == "none" for name in names):
                raise ValueError("the `none` algorithm is never accepted")
            return tuple(dict.fromkeys(names))
        return names

    @model_validator(mode="after")
    def _check_jwt(self) -> GatewaySettings:
        if self.environment != "development":
            secret = self.jwt_secret.get_secret_value().lower()
            if any(marker in secret for marker in _PLACEHOLDER_MARKERS):
                raise ValueError(
                    "jwt_secret holds a placeholder secret; set a real one "
                    "(placeholders are allowed only with environment=development)"
                )
        if (
            "HS256" in self.jwt_algorithms
            and len(self.jwt_secret.get_secret_value().encode()) < MIN_HS256_SECRET_BYTES
        ):
            raise ValueError(f"jwt_secret must be at least {MIN_HS256_SECRET_BYTES} bytes long")
        key_sources = (self.jwt_jwks_file, self.jwt_jwks_url)
        if ASYMMETRIC_ALGORITHMS.intersection(self.jwt_algorithms) and key_sources == (None, None):
            raise ValueError("RS256/ES256 in jwt_algorithms need jwt_jwks_file or jwt_jwks_url")
        if None not in key_sources:
            raise ValueError("set jwt_jwks_file or jwt_jwks_url, not both")
        return self


def _split(value: object) -> object:
    """`a, b` or `["a", "b"]` (or any collection) as a tuple of non-empty stripped strings;
    anything else is left to pydantic."""
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else text.split(",")
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(str(part).strip() for part in value if str(part).strip())
    return value
