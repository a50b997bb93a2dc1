"""OpenTelemetry traces from the api through the queue into the worker, exported by OTLP/HTTP.

On when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set (and not
OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none) and the `otel` extra (the SDK and the
OTLP/HTTP exporter) is installed; the other OTEL_* variables (sampler, batch delay, headers,
resource attributes) are the SDK's. Off, every helper here is a global read and a return:
`span` hands back one shared no-op context manager, `traceparent` ''.

The W3C traceparent of the api's enqueue span travels in the job's stream entry
(app/queue/client.py, scripts.ENQUEUE); the worker's spans of that job are its children, and
the batch that runs many jobs links to each (app/worker/runner.py)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app import __version__

log = logging.getLogger("hanmo.tracing")
OFF: AbstractContextManager[None] = nullcontext()
PROPAGATOR = TraceContextTextMapPropagator()
_state: dict[str, Any] = {"tracer": None, "provider": None}  # this process's, once set up


def endpoint() -> str:
    """Where this process would send spans by the OTEL_* environment; '' for nowhere."""
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return ""
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return ""
    return env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT", ""
    )


def setup(service: str) -> TracerProvider | None:
    """Export this process's spans as `service` (OTEL_SERVICE_NAME wins), once per process;
    the provider, or None when tracing is off. It is also made the global provider (unless
    one is set already), which FastAPI's own server span and other libraries read."""
    if _state["provider"] is not None:
        return _state["provider"]  # type: ignore[no-any-return]
    where = endpoint()
    if not where:
        return None
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol != "http/protobuf":
        log.warning("tracing.off reason=protocol protocol=%s supported=http/protobuf", protocol)
        return None
    provider = _sdk_provider(os.environ.get("OTEL_SERVICE_NAME") or service)
    if provider is None:
        return None
    trace.set_tracer_provider(provider)
    _state["provider"], _state["tracer"] = provider, provider.get_tracer("hanmo", __version__)
    log.info("tracing.on service=%s endpoint=%s", service, where)
    return provider


def _sdk_provider(service: str) -> TracerProvider | None:
    """An SDK provider exporting by OTLP/HTTP in batches; None without the `otel` extra."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("tracing.off reason=not_installed hint=\"pip install 'hanmo[otel]'\"")
        return None
    resource = Resource.create({"service.name": service, "service.version": __version__})
    provider = SdkTracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def flush() -> None:
    """Export what is buffered now (a process about to stop)."""
    provider = _state["provider"]
    if provider is not None:
        provider.force_flush()


def tracer() -> Tracer | None:
    """This process's tracer; None while tracing is off."""
    return _state["tracer"]  # type: ignore[no-any-return]


def span(
    name: str, attributes: dict[str, Any] | None = None, kind: SpanKind = SpanKind.INTERNAL
) -> AbstractContextManager[Any]:
    """A child span of the current one, current inside the block; OFF while tracing is off."""
    active = _state["tracer"]
    if active is None:
        return OFF
    return active.start_as_current_span(name, attributes=attributes, kind=kind)  # type: ignore[no-any-return]


def traceparent() -> str:
    """The current span's W3C traceparent (what a job carries to its worker); '' when off."""
    if _state["tracer"] is None:
        return ""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    return carrier.get("traceparent", "")


def remote(parent: str) -> Context | None:
    """The context a traceparent names, None for '' or one that does not parse."""
    if not parent:
        return None
    context = PROPAGATOR.extract({"traceparent": parent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def job_span(name: str, parent: str, attributes: dict[str, Any]) -> AbstractContextManager[Any]:
    """A span of one job's own work (a long job's step) in the job's trace: a child of the
    traceparent `parent` (a trace of its own when it has none). OFF while tracing is off."""
    active = _state["tracer"]
    if active is None:
        return OFF
    return active.start_as_current_span(name, context=remote(parent), attributes=attributes)  # type: ignore[no-any-return]


def batch_span(
    name: str, parents: Iterable[str], attributes: dict[str, Any]
) -> AbstractContextManager[Any]:
    """The span of work done once for many jobs (a batch): linked to each job's span, and a
    child of the job's when it serves one job only (the usual case when the load is light),
    so that request's trace is one tree. OFF while tracing is off."""
    active = _state["tracer"]
    if active is None:
        return OFF
    contexts = [c for c in map(remote, parents) if c is not None]
    links = [Link(trace.get_current_span(c).get_span_context()) for c in contexts]
    parent = contexts[0] if len(contexts) == 1 else None
    return active.start_as_current_span(  # type: ignore[no-any-return]
        name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes, links=links
    )


def record(
    name: str,
    parent: str,
    start_ms: int,
    end_ms: int,
    attributes: dict[str, Any],
    link: Span | None = None,
) -> None:
    """A span that happened already (a job's wait in its queue, from the times the queue
    kept), as a child of the traceparent `parent`, linked to `link` (its batch)."""
    active = _state["tracer"]
    context = remote(parent)
    if active is None or context is None:
        return
    links = [Link(link.get_span_context())] if link is not None else None
    started = active.start_span(
        name, context=context, attributes=attributes, links=links, start_time=start_ms * 1_000_000
    )
    started.end(end_time=max(start_ms, end_ms) * 1_000_000)
