"""The gateway's protective middleware, each a pure ASGI class (no per-request Starlette cost)."""

from gateway.middleware.body_limit import BodyLimit
from gateway.middleware.load_shed import LoadShedder
from gateway.middleware.rate_limit import RateLimiter
from gateway.middleware.trusted_host import TrustedHost

__all__ = ["BodyLimit", "LoadShedder", "RateLimiter", "TrustedHost"]
