"""Does an AMQP 0-9-1 broker answer at a URL? A handshake probe without a client library.

A TCP connect alone would accept any process on the port; the broker's reply to the
protocol header (a Connection.Start method frame) proves it speaks AMQP 0-9-1.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
# frame type 1 (method) on channel 0, then (after the 4-byte size) class 10 method 10
_FRAME_START = b"\x01\x00\x00"
_CONNECTION_START = b"\x00\x0a\x00\x0a"


async def amqp_problem(url: str, *, within: float = 2.0) -> str | None:
    """None when an AMQP 0-9-1 broker answers at `url`, else what went wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "amqps"):
        return f"not an AMQP URL (scheme {parts.scheme!r})"
    host = parts.hostname or "127.0.0.1"
    tls = parts.scheme == "amqps"
    port = parts.port or (5671 if tls else 5672)
    try:
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=ssl.create_default_context() if tls else None
            )
            try:
                writer.write(PROTOCOL_HEADER)
                await writer.drain()
                reply = await reader.readexactly(11)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError:
        return f"no AMQP answer from {host}:{port} within {within:g}s"
    except asyncio.IncompleteReadError:
        return f"{host}:{port} closed the connection: not an AMQP 0-9-1 broker"
    except OSError as exc:  # ssl.SSLError is an OSError too
        return f"cannot connect to {host}:{port} ({exc.strerror or exc})"
    if reply[:3] != _FRAME_START or reply[7:11] != _CONNECTION_START:
        return f"{host}:{port} answered, but not with an AMQP 0-9-1 Connection.Start"
    return None
