"""Bearer-token (JWT) authentication of gateway requests, as plain functions.

`Authenticator.authenticate` turns an `Authorization` header into a `Principal` or
raises `AuthError` with a short, stable reason. It is synchronous and does no I/O per
request: the secret and the JWKS keys are prepared ahead (from a file when it is
built, or from a URL by gateway.jwks, which swaps in the key set it fetched). A token
that verified is remembered until it expires (gateway.verified_tokens), so a client's
later requests with it skip the signature check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import jwt
from contracts.limits import has_control_characters
from opentelemetry import trace
from servicekit.telemetry import span_if_recording

from gateway.settings import GatewaySettings
from gateway.verified_tokens import VerifiedTokens

MAX_SUBJECT_LENGTH: Final = 128
tracer = trace.get_tracer("gateway")

# Most specific first: InvalidSignatureError is a DecodeError, and all are
# InvalidTokenErrors.
_REASONS: Final[tuple[tuple[type[jwt.InvalidTokenError], str], ...]] = (
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.DecodeError, "malformed token"),
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.MissingRequiredClaimError, "missing required claim"),
    (jwt.exceptions.InvalidSubjectError, "invalid subject"),
    (jwt.InvalidIssuedAtError, "malformed token"),
)


class AuthError(Exception):
    """A request's credentials were missing or not acceptable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for."""

    subject: str
    claims: Mapping[str, Any]


class Authenticator:
    """Verifies bearer tokens against the settings' algorithms, keys and claims."""

    def __init__(
        self, settings: GatewaySettings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        self._verified: VerifiedTokens[Principal] = VerifiedTokens()
        self._algorithms = frozenset(settings.jwt_algorithms)
        self._secret = settings.jwt_secret.get_secret_value()
        self._keys = (
            parse_jwks(settings.jwt_jwks_file.read_text(encoding="utf-8"), self._algorithms)
            if settings.jwt_jwks_file is not None
            else {}
        )
        # Called with no arguments when a token names a key id we do not hold (gateway.jwks
        # then fetches the key set again: the provider may have rotated its keys).
        self.on_unknown_key: Callable[[], None] | None = None
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._leeway = settings.jwt_leeway_seconds

    def authenticate(self, authorization_header: str | None) -> Principal:
        """The principal of a valid `Authorization: Bearer <jwt>` header, else AuthError."""
        token = _bearer_token(authorization_header)
        now = self._clock()
        known = self._verified.get(token, now=now)
        if known is not None:
            return known
        # A span only for a real verification: a known token is a dictionary lookup.
        with span_if_recording(tracer, "gateway.authenticate"):
            principal = self._verify(token)
        claims = principal.claims
        starts = max(float(claims["iat"]), float(claims.get("nbf", claims["iat"])))
        self._verified.put(
            token,
            principal,
            valid_from=starts - self._leeway,
            valid_until=float(claims["exp"]) + self._leeway,
        )
        return principal

    def _verify(self, token: str) -> Principal:
        """PyJWT's full check: header, signature, then every claim."""
        key = self._key_for(_unverified_header(token))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=sorted(self._algorithms),
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={
                    "require": ["exp", "iat", "sub"],
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.InvalidTokenError as error:
            raise AuthError(_reason(error)) from error
        except jwt.PyJWTError as error:  # e.g. a key the algorithm cannot use
            raise AuthError("bad signature") from error
        subject = claims["sub"]
        valid = isinstance(subject, str) and 0 < len(subject) <= MAX_SUBJECT_LENGTH
        # The subject becomes the customer id: no control characters (PostgreSQL refuses NUL).
        if not valid or has_control_characters(subject):
            raise AuthError("invalid subject")
        return Principal(subject=subject, claims=MappingProxyType(claims))

    def _key_for(self, header: Mapping[str, Any]) -> str | jwt.PyJWK:
        """The secret or public key that must have signed a token with this header."""
        algorithm = header.get("alg")
        # Checked before any verification, so `none` or an unexpected family never
        # reaches PyJWT with a key it might misuse.
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise AuthError("algorithm not allowed")
        if algorithm == "HS256":
            return self._secret
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            if self.on_unknown_key is not None:
                self.on_unknown_key()
            raise AuthError("unknown key id")
        if key.algorithm_name != algorithm:
            raise AuthError("algorithm not allowed")
        return key

    @property
    def algorithms(self) -> frozenset[str]:
        return self._algorithms

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def replace_keys(self, keys: dict[str, jwt.PyJWK]) -> None:
        """Use this key set from now on (one assignment: requests see old or new, whole).

        Tokens verified with the old set are forgotten: a key the provider withdrew must
        stop admitting its tokens now, not when they expire.
        """
        self._keys = keys
        self._verified.clear()


def parse_jwks(text: str, algorithms: frozenset[str]) -> dict[str, jwt.PyJWK]:
    """The keys of a JWKS document by kid, keeping only those of an allowed algorithm."""
    key_set = jwt.PyJWKSet.from_json(text)
    return {
        key.key_id: key
        for key in key_set.keys
        if key.key_id is not None and key.algorithm_name in algorithms
    }


def _bearer_token(authorization_header: str | None) -> str:
    scheme, _, token = (authorization_header or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError("missing bearer token")
    return token


def _unverified_header(token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as error:
        raise AuthError("malformed token") from error
    return header


def _reason(error: jwt.InvalidTokenError) -> str:
    for error_type, reason in _REASONS:
        if isinstance(error, error_type):
            return reason
    return "invalid token"
