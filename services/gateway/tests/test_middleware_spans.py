"""Which middleware decisions become spans of a sampled request: only the ones that take time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from gateway.middleware import LoadShedder, RateLimiter, load_shed
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from .test_middleware import Downstream, as_subject, call, http_scope


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    """A tracer of a provider of its own (the process's global one is left alone)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    monkeypatch.setattr(load_shed, "tracer", tracer)
    yield tracer, exporter
    provider.shutdown()


async def test_only_a_request_that_waits_for_a_slot_gets_an_admit_span(
    spans: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = spans
    gate = asyncio.Event()
    shedder = LoadShedder(Downstream(gate), max_in_flight=1, max_queued=1, max_queue_seconds=5)
    tasks, servers = [], []
    for name in ("first", "second"):
        servers.append(tracer.start_span(name))  # each request's sampled server span
        with trace.use_span(servers[-1], end_on_exit=False):
            tasks.append(asyncio.create_task(call(shedder, http_scope())))
        await asyncio.sleep(0.01)
    gate.set()
    assert [r.status for r in await asyncio.gather(*tasks)] == [200, 200]
    for server in servers:
        server.end()
    admits = [s for s in exporter.get_finished_spans() if s.name == "gateway.admit"]
    assert len(admits) == 1, "the first found a free slot: nothing to show"
    assert admits[0].parent is not None
    second = next(s for s in exporter.get_finished_spans() if s.name == "second")
    assert admits[0].parent.span_id == second.context.span_id
    assert admits[0].attributes == {"ordermesh.shed": False}


async def test_a_rate_limited_request_says_so_on_its_span(
    spans: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = spans
    limiter = RateLimiter(Downstream(), rate_per_second=0.001, burst=1, key=lambda s: "alice")
    for name in ("allowed", "limited"):
        with tracer.start_as_current_span(name):
            await call(limiter, as_subject("alice"))
    finished = {s.name: s for s in exporter.get_finished_spans()}
    assert set(finished) == {"allowed", "limited"}  # the decision itself is no span
    assert finished["limited"].attributes == {"ordermesh.rate_limited": True}
    assert not finished["allowed"].attributes
