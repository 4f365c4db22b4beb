"""What the black-box suite knows about the gateway it tests, all from the environment.

ORDERMESH_E2E_URL            the gateway's base URL; unset: the suite starts the local
                             stack itself (the `make up` machinery) on free ports
ORDERMESH_E2E_JWT_SECRET     HS256 secret the gateway trusts (default: the dev secret)
ORDERMESH_E2E_JWT_ISSUER     `iss` it requires (default: ordermesh-dev)
ORDERMESH_E2E_JWT_AUDIENCE   `aud` it requires (default: ordermesh-api)
ORDERMESH_E2E_MAX_IN_FLIGHT  its GATEWAY_MAX_IN_FLIGHT (default 256)
ORDERMESH_E2E_MAX_QUEUED     its GATEWAY_MAX_QUEUED (default 1024); the 503 test needs
                             its GATEWAY_MAX_QUEUE_SECONDS well above 10 s
ORDERMESH_E2E_RATE_BURST     its GATEWAY_RATE_LIMIT_BURST (default 200)
ORDERMESH_E2E_MAX_BODY_BYTES its GATEWAY_MAX_BODY_BYTES (default 65536)
ORDERMESH_E2E_PAUSE_NOTIFY   shell command that makes notify stop answering, and
ORDERMESH_E2E_RESUME_NOTIFY  the one that brings it back (defaults, for a stack on
                             this machine: SIGSTOP / SIGCONT to `notify serve`;
                             on kind, scripts/kind_e2e_env.py prints them: KEDA's
                             paused-replicas annotation on ordermesh-notify)
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt

DEV_SECRET = "dev-secret-change-me-not-for-production"
DEV_ISSUER = "ordermesh-dev"
DEV_AUDIENCE = "ordermesh-api"
LOCAL_PAUSE = "pkill -STOP -f '[n]otify serve'"
LOCAL_RESUME = "pkill -CONT -f '[n]otify serve'"


@dataclass(frozen=True)
class Target:
    url: str
    jwt_secret: str = DEV_SECRET
    jwt_issuer: str = DEV_ISSUER
    jwt_audience: str = DEV_AUDIENCE
    max_in_flight: int = 256
    max_queued: int = 1024
    rate_burst: int = 200
    max_body_bytes: int = 65_536
    pause_notify: Callable[[], None] | None = field(default=None, compare=False)
    resume_notify: Callable[[], None] | None = field(default=None, compare=False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], **given: Any) -> Target:
        def number(name: str, default: int) -> int:
            return int(environ.get(f"ORDERMESH_E2E_{name}", default))

        url = given.pop("url", None) or environ["ORDERMESH_E2E_URL"]
        local = urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")
        pause = environ.get("ORDERMESH_E2E_PAUSE_NOTIFY") or (LOCAL_PAUSE if local else None)
        resume = environ.get("ORDERMESH_E2E_RESUME_NOTIFY") or (LOCAL_RESUME if local else None)
        values: dict[str, Any] = {
            "url": url.rstrip("/"),
            "jwt_secret": environ.get("ORDERMESH_E2E_JWT_SECRET", DEV_SECRET),
            "jwt_issuer": environ.get("ORDERMESH_E2E_JWT_ISSUER", DEV_ISSUER),
            "jwt_audience": environ.get("ORDERMESH_E2E_JWT_AUDIENCE", DEV_AUDIENCE),
            "max_in_flight": number("MAX_IN_FLIGHT", 256),
            "max_queued": number("MAX_QUEUED", 1024),
            "rate_burst": number("RATE_BURST", 200),
            "max_body_bytes": number("MAX_BODY_BYTES", 65_536),
            "pause_notify": _shell(pause) if pause else None,
            "resume_notify": _shell(resume) if resume else None,
        }
        return cls(**{**values, **given})

    def claims(self, subject: str, **override: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "sub": subject,
            "iss": self.jwt_issuer,
            "aud": self.jwt_audience,
            "iat": now,
            "exp": now + 600,
        }
        return {**claims, **override}

    def token(self, subject: str | None = None, **override: Any) -> str:
        """A valid token (for a fresh subject unless one is given), claims overridable."""
        claims = self.claims(subject or new_subject(), **override)
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    def auth(self, subject: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject)}"}


def new_subject() -> str:
    """A customer of one's own: tests never see each other's orders or rate limits."""
    return f"e2e-{uuid.uuid4().hex[:12]}"


def _shell(command: str) -> Callable[[], None]:
    def run() -> None:
        subprocess.run(command, shell=True, check=True, timeout=60)

    return run
