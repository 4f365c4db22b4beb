"""Verified tokens are remembered until they expire, and only verified ones."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from gateway.auth import Authenticator, AuthError, parse_jwks
from gateway.verified_tokens import VerifiedTokens

from services.gateway.tests.test_auth import RSA_KEY, hs256, make_settings, write_jwks


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token PyJWT was asked to verify."""
    seen: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        seen.append(token)
        result: dict[str, Any] = real(token, *args, **kwargs)
        return result

    monkeypatch.setattr(jwt, "decode", counting)  # gateway.auth calls jwt.decode
    return seen


def test_a_token_is_verified_once_while_it_is_valid(decodes: list[str]) -> None:
    authenticator = Authenticator(make_settings(), clock=Clock())
    token = hs256(sub="alice")
    first = authenticator.authenticate(f"Bearer {token}")
    again = authenticator.authenticate(f"Bearer {token}")
    assert first == again
    assert first.subject == "alice"
    assert decodes == [token]


def test_after_expiry_plus_leeway_it_is_verified_again(decodes: list[str]) -> None:
    clock = Clock()
    authenticator = Authenticator(make_settings(jwt_leeway_seconds=30), clock=clock)
    exp = int(clock.now) + 600
    token = hs256(exp=exp)
    authenticator.authenticate(f"Bearer {token}")
    clock.now = exp + 29  # inside the leeway: still remembered
    authenticator.authenticate(f"Bearer {token}")
    assert len(decodes) == 1
    clock.now = exp + 30  # PyJWT's own bound: exp <= now - leeway is expired
    authenticator.authenticate(f"Bearer {token}")  # PyJWT's clock is real: valid again
    assert len(decodes) == 2


def test_before_nbf_minus_leeway_it_is_not_served_from_memory(decodes: list[str]) -> None:
    clock = Clock()
    authenticator = Authenticator(make_settings(jwt_leeway_seconds=30), clock=clock)
    nbf = int(clock.now)
    token = hs256(nbf=nbf)
    authenticator.authenticate(f"Bearer {token}")
    clock.now = nbf - 31
    authenticator.authenticate(f"Bearer {token}")
    assert len(decodes) == 2


def test_failures_are_never_remembered(decodes: list[str]) -> None:
    authenticator = Authenticator(make_settings(), clock=Clock())
    forged = hs256(secret="another-secret-of-at-least-32-bytes!!")
    for _ in range(2):
        with pytest.raises(AuthError, match="bad signature"):
            authenticator.authenticate(f"Bearer {forged}")
    assert decodes == [forged, forged]


def test_new_keys_forget_every_verified_token(tmp_path: Path, decodes: list[str]) -> None:
    path = write_jwks(tmp_path, (RSA_KEY, "RS256", "rsa-1"))
    authenticator = Authenticator(
        make_settings(jwt_algorithms="RS256", jwt_jwks_file=path), clock=Clock()
    )
    token = jwt.encode(
        {
            "sub": "bob",
            "iss": "ordermesh-dev",
            "aud": "ordermesh-api",
            "iat": int(time.time()),
            "exp": int(time.time()) + 600,
        },
        RSA_KEY,
        algorithm="RS256",
        headers={"kid": "rsa-1"},
    )
    authenticator.authenticate(f"Bearer {token}")
    authenticator.replace_keys({})  # the provider withdrew rsa-1
    with pytest.raises(AuthError, match="unknown key id"):
        authenticator.authenticate(f"Bearer {token}")
    authenticator.replace_keys(parse_jwks(path.read_text(), frozenset({"RS256"})))
    assert authenticator.authenticate(f"Bearer {token}").subject == "bob"


def test_capacity_drops_the_oldest_first() -> None:
    tokens: VerifiedTokens[str] = VerifiedTokens(capacity=2)
    for name in ("a", "b", "c"):
        tokens.put(name, name.upper(), valid_from=0.0, valid_until=10.0)
    assert len(tokens) == 2
    assert tokens.get("a", now=1.0) is None
    assert (tokens.get("b", now=1.0), tokens.get("c", now=1.0)) == ("B", "C")
    assert tokens.get("c", now=10.0) is None  # expired: dropped
    assert len(tokens) == 1
