"""The configuration reference: every setting of every service as a Markdown table.

The README embeds the output of `render_config_table()` (printed by
`ordermesh config-table`), and a test fails when the two differ, so the documented
environment variables, defaults and descriptions cannot drift from the code.
"""

from __future__ import annotations

from typing import Final

from gateway.settings import GatewaySettings
from notify.settings import NotifySettings
from orders.settings import OrdersSettings
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from servicekit.settings import ServiceSettings

# Every service's settings class, in the order the table lists them: one line each.
SERVICE_SETTINGS: Final[tuple[tuple[str, type[ServiceSettings]], ...]] = (
    ("orders", OrdersSettings),
    ("notify", NotifySettings),
    ("gateway", GatewaySettings),
)

_HEADER = ("service", "env var", "default", "description")


def render_config_table() -> str:
    """A Markdown table with one row per setting of each service, in declaration order."""
    rows = [_HEADER, tuple("---" for _ in _HEADER)]
    for service, settings_class in SERVICE_SETTINGS:
        prefix = settings_class.model_config.get("env_prefix", "")
        for name, field in settings_class.model_fields.items():
            rows.append(
                (
                    service,
                    _code(f"{prefix}{name}".upper()),
                    _default(field),
                    _cell(field.description or ""),
                )
            )
    return "\n".join("| " + " | ".join(row) + " |" for row in rows) + "\n"


def _default(field: FieldInfo) -> str:
    """The default as one would write it in the environment variable, as a table cell."""
    if field.default_factory is not None:
        value: object = field.get_default(call_default_factory=True, validated_data={})
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if value is None:
        return "(unset)"
    # Secret defaults are local development addresses, not secrets: show them.
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, (set, frozenset, list, tuple)):
        # Collections are set as comma-separated lists; an empty one is unset.
        return _code(",".join(sorted(str(v) for v in value))) if value else "(none)"
    if isinstance(value, bool):
        value = "true" if value else "false"
    return _code(str(value))


def _code(text: str) -> str:
    return f"`{_cell(text)}`"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")
