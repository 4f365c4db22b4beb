"""A webhook receiver that takes its time: notify's deliberately slow sender.

notify (NOTIFY_SENDER=webhook) POSTs each event here; every request is held for
`delay` seconds before a 204, so notify drains at most max_concurrency / delay events
a second and a burst of creates becomes a backlog. A request whose signature does not
verify gets a 401 (notify gives the event up), so only real deliveries are counted.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIGNATURE_HEADER = "X-Ordermesh-Signature"
EVENT_ID_HEADER = "X-Ordermesh-Event-Id"


@dataclass
class Deliveries:
    """What the receiver saw, written by its handler threads."""

    event_ids: set[str] = field(default_factory=set)
    requests: int = 0
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> tuple[int, int, int]:
        """(distinct events delivered, requests, refused), read together."""
        with self.lock:
            return len(self.event_ids), self.requests, self.refused


@dataclass(frozen=True)
class SlowWebhook:
    url: str
    secret: str
    deliveries: Deliveries


@contextmanager
def slow_webhook(*, delay: float, secret: str) -> Iterator[SlowWebhook]:
    """A receiver on 127.0.0.1 (a free port) for the block's duration."""
    deliveries = Deliveries()
    key = secret.encode()

    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as notify's client pools its connections.
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
            valid = hmac.compare_digest(self.headers.get(SIGNATURE_HEADER) or "", expected)
            time.sleep(delay)
            with deliveries.lock:
                deliveries.requests += 1
                if valid:
                    deliveries.event_ids.add(self.headers.get(EVENT_ID_HEADER) or "")
                else:
                    deliveries.refused += 1
            self.send_response(204 if valid else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # a line per request would drown the test's output

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SlowWebhook(
            url=f"http://127.0.0.1:{server.server_port}/events",
            secret=secret,
            deliveries=deliveries,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
