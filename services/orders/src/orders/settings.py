"""Settings of the orders service (environment variables prefixed ORDERS_)."""

from __future__ import annotations

from typing import Final

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict
from servicekit.settings import DatabaseSettings, FailpointSettings

# Crash points the code can stop at (servicekit.failpoints); a typo must not pass silently.
CREATE_BEFORE_COMMIT: Final = "create.before_commit"
RELAY_AFTER_CLAIM: Final = "relay.after_claim"
RELAY_AFTER_CONFIRM: Final = "relay.after_confirm"
FAILPOINT_NAMES: Final = frozenset({CREATE_BEFORE_COMMIT, RELAY_AFTER_CLAIM, RELAY_AFTER_CONFIRM})


class OrdersSettings(DatabaseSettings, FailpointSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore", frozen=True)
    failpoint_names = FAILPOINT_NAMES

    grpc_host: str = Field(default="0.0.0.0", description="address the gRPC server binds")
    grpc_port: int = Field(default=50051, ge=0, le=65535, description="gRPC port")
    http_host: str = Field(default="0.0.0.0", description="address of the health/metrics port")
    http_port: int = Field(
        default=8081, ge=0, le=65535, description="HTTP port for /healthz, /readyz, /metrics"
    )
    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:5432/orders"),
        description="PostgreSQL DSN of the orders database",
    )
    db_acquire_timeout_seconds: float = Field(
        default=2.0, gt=0, description="wait for a free pooled connection before UNAVAILABLE"
    )
    idempotency_ttl_hours: float = Field(
        default=24.0, ge=24.0, description="how long idempotency keys are kept (at least 24)"
    )
    max_rpc_seconds: float = Field(
        default=30.0,
        gt=0,
        description="longest a unary call may run; a shorter client deadline wins",
    )
    export_batch_size: int = Field(
        default=500, ge=1, le=5000, description="orders per ExportOrders message"
    )
    max_message_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="largest gRPC message accepted or sent"
    )
    max_concurrent_rpcs: int = Field(
        default=1000, ge=1, description="RPCs handled at once; more get RESOURCE_EXHAUSTED"
    )
    max_connection_age_seconds: float = Field(
        default=300.0,
        gt=0,
        description="clients reconnect after this long, so new replicas get their share",
    )
    amqp_url: SecretStr = Field(
        default=SecretStr("amqp://guest:guest@127.0.0.1:5672/"),
        description="RabbitMQ URL the outbox relay publishes to (the path is the vhost)",
    )
    relay_enabled: bool = Field(
        default=True,
        description="`orders serve` runs the outbox relay in-process; false when it runs "
        "separately (`orders relay`)",
    )
    relay_batch_size: int = Field(
        default=200, ge=1, le=10_000, description="outbox rows claimed and published at once"
    )
    relay_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="the relay looks for unpublished rows this often even without a NOTIFY",
    )
    relay_linger_seconds: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="after a NOTIFY the relay waits this long for more rows before it "
        "claims: fewer, larger rounds, for that much more event latency",
    )
