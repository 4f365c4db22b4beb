"""Bearer-token authentication: every way a token can be wrong is a 401."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable

import httpx
import jwt
import orjson
import pytest

from tests.e2e.support import assert_problem
from tests.e2e.target import Target


def _unsigned(target: Target) -> str:
    """`alg: none`: a token with no signature at all."""

    def part(value: object) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(target.claims('mallory'))}."


NOW = int(time.time())
# name -> how to build the Authorization header value for that case.
BAD_CREDENTIALS: dict[str, Callable[[Target], str | None]] = {
    "missing": lambda t: None,
    "not bearer": lambda t: "Basic YWxpY2U6c2VjcmV0",
    "empty bearer": lambda t: "Bearer",
    "garbage": lambda t: "Bearer not-a-jwt",
    "expired": lambda t: "Bearer " + t.token(exp=int(time.time()) - 120),
    "not yet valid": lambda t: "Bearer " + t.token(nbf=int(time.time()) + 600),
    "wrong audience": lambda t: "Bearer " + t.token(aud="someone-else"),
    "wrong issuer": lambda t: "Bearer " + t.token(iss="https://evil.example"),
    "no subject": lambda t: (
        "Bearer " + jwt.encode({k: v for k, v in t.claims("x").items() if k != "sub"}, t.jwt_secret)
    ),
    "alg none": lambda t: "Bearer " + _unsigned(t),
    "wrong key": lambda t: (
        "Bearer "
        + jwt.encode(
            t.claims("mallory"), "another-secret-of-at-least-32-bytes!!", algorithm="HS256"
        )
    ),
    "tampered": lambda t: "Bearer " + t.token()[:-4] + "AAAA",
}


@pytest.mark.parametrize("case", sorted(BAD_CREDENTIALS))
async def test_bad_credentials_are_401(
    client: httpx.AsyncClient, target: Target, case: str
) -> None:
    value = BAD_CREDENTIALS[case](target)
    headers = {} if value is None else {"Authorization": value}
    response = await client.get(f"/v1/orders/{uuid.uuid4()}", headers=headers)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_valid_token_passes(client: httpx.AsyncClient, target: Target) -> None:
    response = await client.get("/v1/orders", headers=target.auth())
    assert response.status_code == 200, response.text


async def test_probes_and_docs_need_no_token(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        assert (await client.get(path)).status_code == 200, path
