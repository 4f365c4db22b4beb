"""The settings base: env prefixes and the placeholder-secret guard."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict
from servicekit.settings import ServiceSettings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore", frozen=True)

    api_key: SecretStr = SecretStr("changeme")
    database_url: SecretStr = SecretStr("postgresql://app:changeme@db:5432/app")


def test_env_prefix_selects_the_service_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_ENVIRONMENT", "development")
    monkeypatch.setenv("DEMO_DRAIN_SECONDS", "3.5")
    monkeypatch.setenv("OTHER_DRAIN_SECONDS", "99")
    settings = DemoSettings()
    assert settings.drain_seconds == 3.5


def test_placeholders_are_allowed_in_development() -> None:
    assert DemoSettings(environment="development").api_key.get_secret_value() == "changeme"


@pytest.mark.parametrize("environment", ["production", "test"])
def test_placeholder_secret_is_refused_outside_development(environment: str) -> None:
    with pytest.raises(ValidationError, match="api_key holds a placeholder secret"):
        DemoSettings.model_validate(
            {"environment": environment, "database_url": "postgresql://app:s3cr3t@db/app"}
        )


def test_placeholder_password_inside_a_url_is_refused() -> None:
    with pytest.raises(ValidationError, match="database_url holds a placeholder secret"):
        DemoSettings.model_validate({"environment": "production", "api_key": "k-7f3a9c"})


def test_real_secrets_pass_and_are_not_printed() -> None:
    settings = DemoSettings.model_validate(
        {
            "environment": "production",
            "api_key": "k-7f3a9c",
            "database_url": "postgresql://app@db/app",
        }
    )
    assert "k-7f3a9c" not in repr(settings)


def test_production_is_the_default_environment() -> None:
    with pytest.raises(ValidationError):
        DemoSettings()
