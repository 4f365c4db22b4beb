"""Settings: defaults, the webhook's requirements, secrets, failpoints; cursors."""

from __future__ import annotations

import pytest
from notify.pagination import InvalidCursor, decode_cursor, encode_cursor
from notify.settings import NotifySettings
from pydantic import ValidationError


def test_defaults_match_the_documented_topology() -> None:
    settings = NotifySettings(environment="test")
    assert (settings.http_port, settings.prefetch, settings.max_concurrency) == (8082, 200, 200)
    assert settings.queue == "notify.order-events"
    assert settings.retry_queue == "notify.order-events.retry"
    assert settings.dead_letter_exchange == "notify.dlx"
    assert settings.dead_letter_queue == "notify.order-events.dlq"
    assert (settings.delivery_limit, settings.retry_delay_seconds, settings.max_attempts) == (
        10,
        5.0,
        5,
    )
    assert (settings.sender, settings.failpoints) == ("log", frozenset())


def test_environment_variables_use_the_notify_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_ENVIRONMENT", "test")
    monkeypatch.setenv("NOTIFY_PREFETCH", "50")
    monkeypatch.setenv("NOTIFY_FAILPOINTS", "notify.after_record")
    settings = NotifySettings()
    assert settings.prefetch == 50
    assert settings.failpoints == frozenset({"notify.after_record"})


@pytest.mark.parametrize("value", ["", " ", "[]"])
def test_no_failpoints(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_FAILPOINTS", value)
    assert NotifySettings(environment="test").failpoints == frozenset()


def test_an_unknown_failpoint_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown failpoints"):
        NotifySettings(environment="test", failpoints="notify.after_recrod")  # type: ignore[arg-type]


@pytest.mark.parametrize("prefetch", [0, 1001])
def test_prefetch_is_bounded(prefetch: int) -> None:
    with pytest.raises(ValidationError, match="prefetch"):
        NotifySettings(environment="test", prefetch=prefetch)


def test_the_webhook_sender_needs_a_url_and_a_secret() -> None:
    with pytest.raises(ValidationError, match="needs webhook_url and webhook_secret"):
        NotifySettings(environment="test", sender="webhook")


def test_a_placeholder_webhook_secret_is_refused_outside_development() -> None:
    values = {
        "sender": "webhook",
        "webhook_url": "http://hooks.local/",
        "webhook_secret": "changeme",
    }
    with pytest.raises(ValidationError, match="webhook_secret holds a placeholder secret"):
        NotifySettings.model_validate({"environment": "production", **values})
    assert NotifySettings.model_validate({"environment": "development", **values}).webhook_secret


def test_a_cursor_round_trips() -> None:
    assert decode_cursor(encode_cursor(123_456)) == 123_456


@pytest.mark.parametrize("cursor", ["", "%%%", "bjE6", "bjE6YWJj", "eDox", "bjE6MQ==="])
def test_a_foreign_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)
