"""Health checks the local stack waits on: HTTP readiness, gRPC health, open ports.

Each check answers `None` when healthy, else a short reason, so a timed-out start can
say what it was still waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


class HealthCheck(Protocol):
    """Something to poll until the service behind it is ready."""

    def describe(self) -> str: ...

    async def problem(self, *, within: float) -> str | None: ...


@dataclass(frozen=True)
class HttpCheck:
    """GET `url` answers 200."""

    url: str

    def describe(self) -> str:
        return f"GET {self.url}"

    async def problem(self, *, within: float) -> str | None:
        try:
            status = await http_status(self.url, within=within)
        except (OSError, TimeoutError, ValueError) as exc:
            return f"{self.describe()}: {str(exc) or type(exc).__name__}"
        return None if status == 200 else f"{self.describe()}: HTTP {status}"


@dataclass(frozen=True)
class GrpcHealthCheck:
    """grpc.health.v1 Check for `service` at `target` reports SERVING."""

    target: str
    service: str = ""

    def describe(self) -> str:
        return f"gRPC health of {self.service or '(server)'} at {self.target}"

    async def problem(self, *, within: float) -> str | None:
        request = health_pb2.HealthCheckRequest(service=self.service)
        async with grpc.aio.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                reply = await stub.Check(request, timeout=within)
            except grpc.aio.AioRpcError as exc:
                return f"{self.describe()}: {exc.code().name}"
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            return f"{self.describe()}: {status}"
        return None


async def http_status(url: str, *, within: float) -> int:
    """The status code of a plain-HTTP GET of `url` (no body is read)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"only http:// URLs are checked, not {url!r}")
    port = parts.port or 80
    path = parts.path or "/"
    async with asyncio.timeout(within):
        reader, writer = await asyncio.open_connection(parts.hostname, port)
        try:
            request = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
            writer.write(request.encode("ascii"))
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    fields = status_line.split()
    if len(fields) < 2 or not fields[1].isdigit():
        raise ValueError(f"not an HTTP response: {status_line[:80]!r}")
    return int(fields[1])


async def port_open(host: str, port: int, *, within: float = 1.0) -> bool:
    """Does something accept TCP connections on host:port?"""
    try:
        async with asyncio.timeout(within):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
