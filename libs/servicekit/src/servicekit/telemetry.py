"""Tracing bootstrap: the OpenTelemetry SDK, configured once per process from `OTEL_*`.

`configure_tracing` is called by each service's `main` next to `configure_logging`; the
rest of the code only uses the OpenTelemetry API (`trace.get_tracer`), so tests that
build services in-process without it record nothing and pay next to nothing.

The standard variables apply (`OTEL_SDK_DISABLED`, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_EXPORTER_OTLP_*`,
`OTEL_BSP_*`) with two Ordermesh defaults, documented in docs/observability.md:

- sampling is `parentbased_traceidratio` at `DEFAULT_SAMPLE_RATIO` unless
  `OTEL_TRACES_SAMPLER` says otherwise: the gateway decides, every hop behind it follows;
- with no `OTEL_TRACES_EXPORTER` and no OTLP endpoint, nothing is exported (spans are
  still made, so logs and problem bodies carry real trace ids), instead of the SDK's
  default of retrying localhost:4317 forever and logging each failure.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Mapping
from importlib import metadata

from opentelemetry import context, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ParentBased,
    Sampler,
    TraceIdRatioBased,
    _get_from_env_or_default,
)

__all__ = [
    "DEFAULT_SAMPLE_RATIO",
    "TracingConfigError",
    "background",
    "configure_tracing",
    "current_trace_ids",
    "span_if_recording",
    "tracing",
    "tracing_enabled",
]

# One request in ten: enough to see every route's shape under real traffic, at a
# tenth of the export cost. `OTEL_TRACES_SAMPLER_ARG` changes it.
DEFAULT_SAMPLE_RATIO = 0.1
# Kubernetes facts the chart passes in through the Downward API, as resource attributes.
_K8S_ENV = {
    "K8S_POD_NAME": "k8s.pod.name",
    "K8S_NAMESPACE_NAME": "k8s.namespace.name",
    "K8S_NODE_NAME": "k8s.node.name",
    "K8S_DEPLOYMENT_NAME": "k8s.deployment.name",
}


class TracingConfigError(ValueError):
    """An `OTEL_*` variable holds a value this process cannot honour."""


def configure_tracing(
    *, service: str, environ: Mapping[str, str] | None = None, instrument: bool = True
) -> TracerProvider | None:
    """Install the SDK's tracer provider for this process; None when `OTEL_SDK_DISABLED`.

    With `instrument`, asyncpg and aio-pika are patched too (servicekit.instrumentation).
    The caller shuts the provider down at exit, which exports what is still buffered.
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    provider = TracerProvider(
        resource=_resource(service=service, version=_version_of(service), env=env),
        sampler=_sampler(env),
    )
    processor = _processor(env)
    if processor is not None:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    if instrument:
        from servicekit.instrumentation import instrument_libraries

        instrument_libraries()
    return provider


@contextlib.contextmanager
def tracing(*, service: str) -> Iterator[None]:
    """Tracing for this process while the block runs (a service's `main`); at its end
    the spans still buffered are exported."""
    provider = configure_tracing(service=service)
    try:
        yield
    finally:
        if provider is not None:
            provider.shutdown()


def _version_of(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _resource(*, service: str, version: str, env: Mapping[str, str]) -> Resource:
    pod = env.get("K8S_POD_NAME")
    attributes: dict[str, str] = {
        "service.name": service,
        "service.namespace": "ordermesh",
        "service.version": version,
        # The pod name when there is one: it is what a person looks up in kubectl.
        "service.instance.id": pod or f"{socket.gethostname()}-{os.getpid()}",
    }
    attributes.update({key: env[name] for name, key in _K8S_ENV.items() if env.get(name)})
    # Resource.create merges OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME over these.
    return Resource.create(attributes)


def _sampler(env: Mapping[str, str]) -> Sampler:
    if env.get("OTEL_TRACES_SAMPLER"):
        return _get_from_env_or_default()
    raw = env.get("OTEL_TRACES_SAMPLER_ARG")
    try:
        ratio = DEFAULT_SAMPLE_RATIO if raw is None else float(raw)
    except ValueError:
        raise TracingConfigError(f"OTEL_TRACES_SAMPLER_ARG is not a number: {raw!r}") from None
    if not 0.0 <= ratio <= 1.0:
        raise TracingConfigError(f"OTEL_TRACES_SAMPLER_ARG must be within 0..1, not {ratio}")
    return ParentBased(TraceIdRatioBased(ratio))


def _processor(env: Mapping[str, str]) -> SpanProcessor | None:
    exporter = _exporter(env)
    return None if exporter is None else BatchSpanProcessor(exporter)


def _exporter(env: Mapping[str, str]) -> SpanExporter | None:
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    names = env.get("OTEL_TRACES_EXPORTER") or ("otlp" if endpoint else "none")
    name = names.split(",")[0].strip().lower()
    if name == "none":
        return None
    if name == "console":
        return ConsoleSpanExporter()
    if name != "otlp":
        raise TracingConfigError(f"OTEL_TRACES_EXPORTER={names!r}: use otlp, console or none")
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    # The endpoint comes from `env`; headers, timeout and TLS the exporters read from
    # OTEL_* themselves. A base endpoint gets the signal's path only over HTTP.
    traces_endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter(endpoint=endpoint)
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        if endpoint and not traces_endpoint:
            endpoint = endpoint.rstrip("/") + "/v1/traces"
        return HttpExporter(endpoint=endpoint)
    raise TracingConfigError(f"OTLP protocol {protocol!r}: use grpc or http/protobuf")


def tracing_enabled() -> bool:
    """Whether `configure_tracing` installed the SDK in this process."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def current_trace_ids() -> tuple[str | None, str | None]:
    """(trace_id, span_id) of the active span as hex, or (None, None) outside one."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None, None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


@contextlib.contextmanager
def span_if_recording(tracer: trace.Tracer, name: str) -> Iterator[trace.Span]:
    """A child span of the current one if that is sampled, else the current span itself.

    For small steps (a middleware's decision) inside a request: an unsampled request,
    most of them, then pays no span at all.
    """
    current = trace.get_current_span()
    if not current.is_recording():
        yield current
        return
    with tracer.start_as_current_span(name) as span:
        yield span


@contextlib.contextmanager
def background() -> Iterator[None]:
    """Run housekeeping (polls, purges, gauges) untraced, in a context of its own.

    The instrumented libraries would otherwise start a root trace for every poll's SQL,
    burying the traces of real work.
    """
    token = context.attach(context.Context())
    try:
        with suppress_instrumentation():
            yield
    finally:
        context.detach(token)
