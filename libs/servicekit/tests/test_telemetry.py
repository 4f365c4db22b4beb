"""How OTEL_* variables configure tracing: sampler, exporter and resource."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from servicekit import telemetry
from servicekit.telemetry import DEFAULT_SAMPLE_RATIO, TracingConfigError


def test_the_default_sampler_follows_the_parent_and_samples_a_tenth_of_new_traces() -> None:
    sampler = telemetry._sampler({})
    assert "ParentBased" in sampler.get_description()
    assert f"TraceIdRatioBased{{{DEFAULT_SAMPLE_RATIO}}}" in sampler.get_description()


def test_the_ratio_and_the_standard_sampler_variables_are_honoured() -> None:
    assert (
        "TraceIdRatioBased{0.5}"
        in telemetry._sampler({"OTEL_TRACES_SAMPLER_ARG": "0.5"}).get_description()
    )
    always = telemetry._sampler({"OTEL_TRACES_SAMPLER": "parentbased_always_on"})
    assert "AlwaysOnSampler" in always.get_description()


@pytest.mark.parametrize("value", ["half", "1.5", "-0.1"])
def test_a_bad_ratio_stops_the_process_with_a_clear_message(value: str) -> None:
    with pytest.raises(TracingConfigError, match="OTEL_TRACES_SAMPLER_ARG"):
        telemetry._sampler({"OTEL_TRACES_SAMPLER_ARG": value})


def test_nothing_is_exported_without_an_endpoint_or_an_exporter() -> None:
    assert telemetry._exporter({}) is None
    assert telemetry._exporter({"OTEL_TRACES_EXPORTER": "none"}) is None
    assert isinstance(telemetry._exporter({"OTEL_TRACES_EXPORTER": "console"}), ConsoleSpanExporter)


def test_an_endpoint_means_otlp_over_http_unless_grpc_is_asked_for() -> None:
    http = telemetry._exporter({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert isinstance(http, HttpExporter)
    assert http._endpoint == "http://collector:4318/v1/traces"
    grpc = telemetry._exporter(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        }
    )
    assert isinstance(grpc, GrpcExporter)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "json"},
            "protocol",
        ),
    ],
)
def test_an_unknown_exporter_or_protocol_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(TracingConfigError, match=message):
        telemetry._exporter(env)


def test_the_resource_names_the_service_and_the_pod() -> None:
    env = {"K8S_POD_NAME": "gateway-7d9f-abc", "K8S_NAMESPACE_NAME": "shop", "K8S_NODE_NAME": "n1"}
    attributes = telemetry._resource(service="gateway", version="1.2.3", env=env).attributes
    assert attributes["service.name"] == "gateway"
    assert attributes["service.version"] == "1.2.3"
    assert attributes["service.instance.id"] == "gateway-7d9f-abc"
    assert attributes["k8s.namespace.name"] == "shop"
    assert attributes["k8s.node.name"] == "n1"


def test_a_disabled_sdk_installs_nothing() -> None:
    assert telemetry.configure_tracing(service="x", environ={"OTEL_SDK_DISABLED": "true"}) is None
    assert not telemetry.tracing_enabled()
