"""Keys from the identity provider's JWKS URL: fetched at start, refreshed, rotated.

The key set is fetched in the background and swapped into the Authenticator whole, so
verifying a token never waits on the network. It is fetched again every
`jwt_jwks_refresh_seconds`, and sooner when a token names a key id we do not hold
(the provider may have rotated its keys), but at most every `jwt_jwks_refetch_seconds`, so
tokens with made-up key ids cannot turn the gateway into a load generator against the
provider. A failed fetch keeps the keys already held and retries with backoff; until
the first fetch succeeds the gateway reports not ready, since it could verify nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

import httpx
from servicekit.backoff import Backoff

from gateway.auth import Authenticator, parse_jwks

log = logging.getLogger(__name__)

FETCH_TIMEOUT_SECONDS: Final = 5.0
MAX_JWKS_BYTES: Final = 1_000_000


class KeysNotLoaded(Exception):
    """No key set has been fetched yet."""


class JwksRefresher:
    def __init__(
        self,
        url: str,
        authenticator: Authenticator,
        *,
        refresh_seconds: float,
        min_refetch_seconds: float,
        client: httpx.AsyncClient,
    ) -> None:
        self._url = url
        self._authenticator = authenticator
        self._refresh_seconds = refresh_seconds
        self._min_refetch = min_refetch_seconds
        self._client = client
        self._wake = asyncio.Event()
        self._last_fetch = -float("inf")
        authenticator.on_unknown_key = self.request_refresh

    async def check(self) -> None:
        """Readiness: raises until a key set was loaded."""
        if not self._authenticator.key_ids:  # a fetch never installs an empty set
            raise KeysNotLoaded(f"no keys fetched from {self._url} yet")

    def request_refresh(self) -> None:
        """Fetch again soon (an unknown key id was seen), unless a fetch was just made."""
        if time.monotonic() - self._last_fetch >= self._min_refetch:
            self._wake.set()

    async def run(self) -> None:
        """Fetch now, then on schedule or on request, until cancelled."""
        backoff = Backoff(first=1.0, cap=60.0)
        while True:
            self._wake.clear()
            try:
                await self.fetch()
            except (httpx.HTTPError, ValueError) as exc:  # unreachable, or not a key set
                delay = backoff.next()
                log.warning(
                    "JWKS fetch failed, keeping the keys held",
                    extra={"url": self._url, "error": str(exc) or type(exc).__name__},
                )
            else:
                backoff.reset()
                delay = self._refresh_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def fetch(self) -> None:
        self._last_fetch = time.monotonic()
        response = await self._client.get(self._url, timeout=FETCH_TIMEOUT_SECONDS)
        response.raise_for_status()
        if len(response.content) > MAX_JWKS_BYTES:
            raise ValueError(f"the key set is larger than {MAX_JWKS_BYTES} bytes")
        keys = parse_jwks(response.text, self._authenticator.algorithms)
        if not keys:
            raise ValueError("the key set holds no key for the allowed algorithms")
        changed = frozenset(keys) != self._authenticator.key_ids
        self._authenticator.replace_keys(keys)
        if changed:
            log.info("JWKS keys loaded", extra={"url": self._url, "key_ids": sorted(keys)})
