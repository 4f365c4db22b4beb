"""Settings of the notify service (environment variables prefixed NOTIFY_)."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict
from servicekit.settings import DatabaseSettings, FailpointSettings

# Crash points the code can stop at (servicekit.failpoints); a typo must not pass silently.
AFTER_RECORD: Final = "notify.after_record"
FAILPOINT_NAMES: Final = frozenset({AFTER_RECORD})


class NotifySettings(DatabaseSettings, FailpointSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore", frozen=True)
    failpoint_names = FAILPOINT_NAMES

    http_host: str = Field(default="0.0.0.0", description="address the HTTP API binds")
    http_port: int = Field(
        default=8082,
        ge=0,
        le=65535,
        description="HTTP port: /v1/notifications, /healthz, /readyz, /metrics",
    )
    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:5432/notify"),
        description="PostgreSQL DSN of the notify database (its own, not orders')",
    )
    db_acquire_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="wait for a free pooled connection; then the message is retried later",
    )
    amqp_url: SecretStr = Field(
        default=SecretStr("amqp://guest:guest@127.0.0.1:5672/"),
        description="RabbitMQ URL to consume order events from (the path is the vhost)",
    )
    prefetch: int = Field(
        default=200,
        ge=1,
        le=1000,
        description="unacknowledged messages the broker may push to this process at once",
    )
    max_concurrency: int = Field(
        default=200, ge=1, le=1000, description="messages handled at once by this process"
    )
    queue: str = Field(
        default="notify.order-events",
        min_length=1,
        description="quorum queue bound to the order events exchange (`order.*`)",
    )
    retry_queue: str = Field(
        default="notify.order-events.retry",
        min_length=1,
        description="holds messages for a later attempt; they return to the queue after "
        "the retry delay",
    )
    dead_letter_exchange: str = Field(
        default="notify.dlx", min_length=1, description="fanout exchange for dead letters"
    )
    dead_letter_queue: str = Field(
        default="notify.order-events.dlq",
        min_length=1,
        description="where poison messages and given-up events wait for a person",
    )
    delivery_limit: int = Field(
        default=10,
        ge=1,
        description="broker deliveries of one message (crash loops) before it is "
        "dead-lettered; changing it needs a new queue",
    )
    retry_delay_seconds: float = Field(
        default=5.0,
        gt=0,
        description="wait before a transient failure is tried again; changing it needs a "
        "new retry queue",
    )
    max_attempts: int = Field(
        default=5, ge=1, description="attempts at an event before it is dead-lettered"
    )
    sender: Literal["log", "webhook"] = Field(
        default="log", description="how notifications go out: a log line or a webhook POST"
    )
    webhook_url: str | None = Field(
        default=None, description="URL notifications are POSTed to (sender=webhook)"
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key of the X-Ordermesh-Signature header (sender=webhook)",
    )
    webhook_timeout_seconds: float = Field(
        default=5.0, gt=0, description="longest one webhook request may take"
    )
    webhook_tries: int = Field(
        default=3,
        ge=1,
        le=10,
        description="webhook requests per attempt on connection errors and 5xx (jittered)",
    )

    @model_validator(mode="after")
    def _webhook_needs_url_and_secret(self) -> NotifySettings:
        if self.sender == "webhook":
            missing = [n for n in ("webhook_url", "webhook_secret") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"sender=webhook needs {' and '.join(missing)}")
        return self
