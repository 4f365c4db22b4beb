"""Development bearer tokens for the gateway (`ordermesh token`).

Mints an HS256 JWT that the gateway accepts with its development defaults, so a
local request can be authenticated without an identity provider.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import jwt
from gateway.settings import DEV_JWT_AUDIENCE, DEV_JWT_ISSUER, DEV_JWT_SECRET

SECRET_VARIABLE = "GATEWAY_JWT_SECRET"  # noqa: S105 (the variable's name, not a secret)


def mint_dev_token(
    *,
    subject: str,
    ttl_seconds: int = 3600,
    audience: str | None = None,
    issuer: str | None = None,
    environ: Mapping[str, str],
    now: float | None = None,
) -> str:
    """An HS256 token for `subject`, signed with $GATEWAY_JWT_SECRET or the dev default.

    The audience and issuer default to the gateway's development ones.
    """
    issued_at = int(time.time() if now is None else now)
    claims = {
        "sub": subject,
        "iss": issuer or DEV_JWT_ISSUER,
        "aud": audience or DEV_JWT_AUDIENCE,
        "iat": issued_at,
        "exp": issued_at + ttl_seconds,
    }
    secret = environ.get(SECRET_VARIABLE) or DEV_JWT_SECRET
    return jwt.encode(claims, secret, algorithm="HS256")
