"""Authenticate every API request before it reaches a handler (401 otherwise).

The verified principal goes into ``scope["state"]["principal"]``, where the rate
limiter (its key) and the handlers (the customer id) read it. Operational paths and
the API's own documentation need no token.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.auth import Authenticator, AuthError, Principal
from gateway.middleware.asgi import ASGIApp, Receive, Scope, Send, header_values, send_problem

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"})
_CHALLENGE = [(b"www-authenticate", b'Bearer realm="ordermesh"')]


class Authenticate:
    """Pure ASGI middleware answering 401 unless a valid bearer token is sent."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        public_paths: Iterable[str] = PUBLIC_PATHS,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":  # a CORS preflight carries no credentials
            await self.app(scope, receive, send)
            return
        try:
            principal = self._authenticate(scope)
        except AuthError as error:
            await send_problem(
                send,
                status=401,
                slug="unauthorized",
                title="Unauthorized",
                detail=f"a valid bearer token is required: {error.reason}",
                headers=_CHALLENGE,
            )
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def _authenticate(self, scope: Scope) -> Principal:
        values = header_values(scope, b"authorization")
        if len(values) > 1:
            raise AuthError("more than one Authorization header")
        header = values[0].decode("latin-1") if values else None
        return self.authenticator.authenticate(header)


def principal_of(scope: Scope) -> Principal | None:
    """The authenticated principal of a request, if the middleware set one."""
    principal = scope.get("state", {}).get("principal")
    return principal if isinstance(principal, Principal) else None


def subject_key(scope: Scope) -> str | None:
    """The rate limiter's key: the token's subject (None, not limited, without one)."""
    principal = principal_of(scope)
    return principal.subject if principal is not None else None
