"""A real OTLP/HTTP trace receiver for tests: what a collector would receive, decoded.

Services export to it exactly as they would to an OpenTelemetry Collector
(`OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint`, protobuf over HTTP); tests read the
spans back as plain records and follow parent links across services.

    with OtlpReceiver() as receiver:
        ...  # run services with OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint
        spans = receiver.spans()
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from servicekit.testing.net import LOCALHOST

__all__ = ["OtlpReceiver", "ReceivedSpan"]


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: str  # SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL
    trace_id: str
    span_id: str
    parent_id: str | None
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...] = ()  # (trace id, span id) of each linked span

    def __str__(self) -> str:
        return f"{self.service}: {self.kind} {self.name!r}"


class OtlpReceiver:
    """Listens on 127.0.0.1 (a free port) for `POST /v1/traces` until closed.

    `keep_spans=False` only counts the exports (`posts`, `bytes`): a benchmark run of
    half an hour would otherwise keep every span it ever received.
    """

    def __init__(self, *, keep_spans: bool = True) -> None:
        self._lock = threading.Lock()
        self._keep_spans = keep_spans
        self._spans: list[ReceivedSpan] = []
        self.posts = 0
        self.bytes = 0
        self._server = ThreadingHTTPServer((LOCALHOST, 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL to give as OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f"http://{LOCALHOST}:{self._server.server_address[1]}"

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def _receive(self, body: bytes) -> None:
        with self._lock:
            self.posts += 1
            self.bytes += len(body)
        if not self._keep_spans:
            return
        request = ExportTraceServiceRequest.FromString(body)
        received = [
            _decode(span, service=_service_name(resource_spans.resource.attributes))
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self._lock:
            self._spans.extend(received)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                receiver._receive(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per export batch would only clutter the test output

        return Handler


def _decode(span: ProtoSpan, *, service: str) -> ReceivedSpan:
    return ReceivedSpan(
        service=service,
        name=span.name,
        kind=ProtoSpan.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_id=span.parent_span_id.hex() or None,
        attributes={a.key: _value(a.value) for a in span.attributes},
        links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links),
    )


def _service_name(attributes: Any) -> str:
    for attribute in attributes:
        if attribute.key == "service.name":
            return str(_value(attribute.value))
    return "unknown"


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    return getattr(value, which) if which else None
