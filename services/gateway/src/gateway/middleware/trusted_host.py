"""Refuse requests whose Host header is not one of ours (DNS rebinding, cache poisoning).

Names match exactly and case-insensitively; a ``:port`` suffix is ignored; ``"*"``
allows every host. A request without a Host header is refused too.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.middleware.asgi import ASGIApp, Receive, Scope, Send, header_values, send_problem


class TrustedHost:
    """Pure ASGI middleware answering 400 for a Host header outside the allowlist."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(host.lower() for host in allowed_hosts)
        self.allow_all = "*" in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.allow_all:
            await self.app(scope, receive, send)
            return
        values = header_values(scope, b"host")
        host = _hostname(values[0].decode("latin-1")) if len(values) == 1 else None
        if host not in self.allowed:
            await send_problem(
                send,
                status=400,
                slug="unknown-host",
                title="Unknown host",
                detail="the Host header names no host served here",
            )
            return
        await self.app(scope, receive, send)


def _hostname(value: str) -> str:
    """The host part of a Host header value, lower-cased, without any port."""
    value = value.strip().lower()
    if value.startswith("["):  # IPv6 literal: [::1]:8080
        return value.split("]", 1)[0] + "]"
    return value.rsplit(":", 1)[0]
