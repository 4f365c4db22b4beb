"""Bearer-token authentication: every rejection reason, JWKS keys, settings, dev tokens."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from gateway.auth import Authenticator, AuthError, Principal
from gateway.settings import DEV_JWT_AUDIENCE, DEV_JWT_ISSUER, DEV_JWT_SECRET, GatewaySettings
from pydantic import SecretStr, ValidationError

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def make_settings(**overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {"environment": "development", **overrides}
    return GatewaySettings(**values)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": "alice",
        "iss": DEV_JWT_ISSUER,
        "aud": DEV_JWT_AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


def hs256(secret: str = DEV_JWT_SECRET, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm="HS256")


def b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def write_jwks(tmp_path: Path, *keys: tuple[Any, str, str]) -> Path:
    """A JWKS file with the public half of each (private key, algorithm, kid)."""
    jwks = []
    for private_key, algorithm, kid in keys:
        jwk = json.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(private_key.public_key()))
        jwks.append({**jwk, "kid": kid, "alg": algorithm, "use": "sig"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": jwks}), encoding="utf-8")
    return path


@pytest.fixture
def dev_auth() -> Authenticator:
    return Authenticator(make_settings())


@pytest.fixture
def jwks_auth(tmp_path: Path) -> Authenticator:
    path = write_jwks(tmp_path, (RSA_KEY, "RS256", "rsa-1"), (EC_KEY, "ES256", "ec-1"))
    return Authenticator(make_settings(jwt_algorithms="RS256,ES256", jwt_jwks_file=path))


def test_valid_hs256_token_gives_the_principal(dev_auth: Authenticator) -> None:
    principal = dev_auth.authenticate(f"Bearer {hs256()}")
    assert isinstance(principal, Principal)
    assert principal.subject == "alice"
    assert principal.claims["aud"] == DEV_JWT_AUDIENCE


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("Bearer ", "missing bearer token"),
        ("Basic YWxpY2U6c2VjcmV0", "missing bearer token"),
        ("Bearer not-a-jwt", "malformed token"),
        ("Bearer a.b.c", "malformed token"),
        (f"Bearer {hs256(exp=int(time.time()) - 120)}", "token expired"),
        (f"Bearer {hs256(nbf=int(time.time()) + 600)}", "token not yet valid"),
        (f"Bearer {hs256(aud='someone-else')}", "wrong audience"),
        (f"Bearer {hs256(iss='someone-else')}", "wrong issuer"),
        (f"Bearer {hs256(secret='another-secret-of-at-least-32-bytes')}", "bad signature"),
        (f"Bearer {hs256(exp=None)}", "missing required claim"),
        (f"Bearer {hs256(sub=None)}", "missing required claim"),
        (f"Bearer {hs256(sub='')}", "invalid subject"),
        (f"Bearer {hs256(sub='x' * 129)}", "invalid subject"),
        (f"Bearer {b64url({'alg': 'none'})}.{b64url(claims())}.", "algorithm not allowed"),
        (f"Bearer {b64url({'alg': 'None'})}.{b64url(claims())}.", "algorithm not allowed"),
        (
            f"Bearer {jwt.encode(claims(), RSA_KEY, algorithm='RS256', headers={'kid': 'k'})}",
            "algorithm not allowed",
        ),
    ],
)
def test_rejected_with_a_stable_reason(
    dev_auth: Authenticator, header: str | None, reason: str
) -> None:
    with pytest.raises(AuthError) as caught:
        dev_auth.authenticate(header)
    assert caught.value.reason == reason


def test_leeway_accepts_a_token_just_expired(dev_auth: Authenticator) -> None:
    token = hs256(exp=int(time.time()) - 5)
    assert dev_auth.authenticate(f"Bearer {token}").subject == "alice"


@pytest.mark.parametrize(
    ("private_key", "algorithm", "kid"), [(RSA_KEY, "RS256", "rsa-1"), (EC_KEY, "ES256", "ec-1")]
)
def test_jwks_keys_by_kid(
    jwks_auth: Authenticator, private_key: Any, algorithm: str, kid: str
) -> None:
    token = jwt.encode(claims(), private_key, algorithm=algorithm, headers={"kid": kid})
    assert jwks_auth.authenticate(f"bearer {token}").subject == "alice"

    unknown = jwt.encode(claims(), private_key, algorithm=algorithm, headers={"kid": "other"})
    with pytest.raises(AuthError, match="unknown key id"):
        jwks_auth.authenticate(f"Bearer {unknown}")


def test_jwks_key_of_another_algorithm_is_refused(jwks_auth: Authenticator) -> None:
    # An RS256 header naming the EC key must not be verified with it.
    token = jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "ec-1"})
    with pytest.raises(AuthError, match="algorithm not allowed"):
        jwks_auth.authenticate(f"Bearer {token}")


def test_hs256_refused_when_only_jwks_algorithms_are_allowed(jwks_auth: Authenticator) -> None:
    with pytest.raises(AuthError, match="algorithm not allowed"):
        jwks_auth.authenticate(f"Bearer {hs256()}")


def test_placeholder_secret_refused_outside_development() -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        GatewaySettings(environment="production")
    with pytest.raises(ValidationError, match="placeholder"):
        GatewaySettings(
            environment="test", jwt_secret=SecretStr("our-secret-CHANGEME-before-going-live")
        )
    assert make_settings().jwt_secret.get_secret_value() == DEV_JWT_SECRET
    real = GatewaySettings(environment="production", jwt_secret=SecretStr("k" * 32))
    assert real.jwt_algorithms == ("HS256",)


@pytest.mark.parametrize("algorithms", ["none", "HS256,none", '["NONE"]', "HS512", ""])
def test_algorithm_allowlist_refuses_others(algorithms: str) -> None:
    with pytest.raises(ValidationError):
        make_settings(jwt_algorithms=algorithms)


def test_algorithms_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GATEWAY_JWT_ALGORITHMS", "HS256, ES256")
    monkeypatch.setenv("GATEWAY_JWT_JWKS_FILE", str(write_jwks(tmp_path, (EC_KEY, "ES256", "e"))))
    assert make_settings().jwt_algorithms == ("HS256", "ES256")


def test_short_secret_and_missing_jwks_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        make_settings(jwt_secret="short")
    with pytest.raises(ValidationError, match="jwt_jwks_file"):
        make_settings(jwt_algorithms="RS256")


def test_ordermesh_token_is_accepted(
    dev_auth: Authenticator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAY_JWT_SECRET", raising=False)
    command = Path(sys.executable).with_name("ordermesh")
    result = subprocess.run(
        [str(command), "token", "--sub", "alice", "--ttl", "60"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    principal = dev_auth.authenticate(f"Bearer {result.stdout.strip()}")
    assert principal.subject == "alice"
    assert principal.claims["exp"] - principal.claims["iat"] == 60
