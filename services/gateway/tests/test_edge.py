"""Keys from a JWKS URL (loading, rotation, readiness) and CORS, through a running gateway."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from servicekit.testing.polling import poll_until

from .conftest import Start


@dataclass
class IdentityProvider:
    """Serves a JWKS document that the test can change (or make fail)."""

    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    failing: bool = False
    fetches: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if self.failing:
            return web.Response(status=503)
        jwks = [
            {**jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key(), as_dict=True), "kid": kid}
            | {"alg": "RS256", "use": "sig"}
            for kid, k in self.keys.items()
        ]
        return web.json_response({"keys": jwks})

    def token(self, kid: str, private_key: rsa.RSAPrivateKey | None = None) -> dict[str, str]:
        now = int(time.time())
        claims = {"sub": "alice", "iss": "t", "aud": "t", "iat": now, "exp": now + 600}
        key = private_key or self.keys[kid]
        signed = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        return {"Authorization": f"Bearer {signed}"}


@pytest.fixture
async def provider() -> AsyncIterator[IdentityProvider]:
    idp = IdentityProvider()
    app = web.Application()
    app.router.add_get("/jwks", idp.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    idp.url = f"http://127.0.0.1:{runner.addresses[0][1]}/jwks"
    yield idp
    await runner.cleanup()


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


async def test_keys_come_from_the_jwks_url_and_follow_a_rotation(
    start: Start, provider: IdentityProvider
) -> None:
    provider.failing = True
    provider.keys = {"k1": new_key()}
    _, client, _ = await start(
        jwt_algorithms=("RS256",), jwt_jwks_url=provider.url, jwt_jwks_refetch_seconds=0
    )
    order = f"/v1/orders/{uuid.uuid4()}"

    not_ready = await client.get("/readyz")
    assert not_ready.status_code == 503
    assert "no keys fetched" in not_ready.json()["checks"]["jwks"]
    provider.failing = False

    async def ready() -> bool:
        return (await client.get("/readyz")).status_code == 200

    await poll_until(ready, what="keys loaded")
    assert (await client.get(order, headers=provider.token("k1"))).status_code == 200

    # The provider rotates: k2 replaces k1. The first k2 token is refused (unknown key
    # id) and makes the gateway fetch again; soon k2 tokens pass and k1 ones do not.
    old = provider.keys["k1"]
    provider.keys = {"k2": new_key()}
    first = await client.get(order, headers=provider.token("k2"))
    assert first.status_code == 401
    assert "unknown key id" in first.json()["detail"]

    async def accepted() -> bool:
        return (await client.get(order, headers=provider.token("k2"))).status_code == 200

    await poll_until(accepted, what="the rotated key accepted")
    rotated_out = await client.get(order, headers=provider.token("k1", old))
    assert rotated_out.status_code == 401

    # The provider failing later keeps the keys already held.
    provider.failing = True
    fetches = provider.fetches
    await client.get(order, headers=provider.token("k3", new_key()))  # asks for a fetch

    async def fetched() -> bool:
        return provider.fetches > fetches

    await poll_until(fetched, what="another fetch")
    assert (await client.get(order, headers=provider.token("k2"))).status_code == 200
    assert (await client.get("/readyz")).status_code == 200


async def test_a_token_with_an_unknown_key_does_not_fetch_more_than_allowed(
    start: Start, provider: IdentityProvider
) -> None:
    provider.keys = {"k1": new_key()}
    _, client, _ = await start(
        jwt_algorithms=("RS256",), jwt_jwks_url=provider.url, jwt_jwks_refetch_seconds=3600
    )

    async def ready() -> bool:
        return (await client.get("/readyz")).status_code == 200

    await poll_until(ready, what="keys loaded")
    stranger = new_key()
    for _ in range(20):
        made_up = provider.token(f"kid-{uuid.uuid4().hex}", stranger)
        assert (await client.get("/v1/orders", headers=made_up)).status_code == 401
    assert provider.fetches == 1  # made-up key ids cannot drive load to the provider


@pytest.mark.parametrize(
    ("origin", "allowed"), [("https://shop.example", True), ("https://evil.example", False)]
)
async def test_cors_answers_only_allowed_origins(start: Start, origin: str, allowed: bool) -> None:
    _, client, _ = await start(cors_origins=("https://shop.example",))
    preflight = await client.options(
        "/v1/orders",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
        },
    )
    headers: dict[str, Any] = dict(preflight.headers)
    if allowed:
        assert preflight.status_code == 200
        assert headers["access-control-allow-origin"] == origin
        assert "idempotency-key" in headers["access-control-allow-headers"].lower()
    else:
        assert preflight.status_code == 400
        assert "access-control-allow-origin" not in headers
