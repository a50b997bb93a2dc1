"""One request, one trace from the api through Redis into the worker (issue 49, item 3): a real
`hanmo api` and `hanmo worker` export their spans by OTLP/HTTP to an in-process receiver that
decodes the protobuf export requests (opentelemetry-proto), the way a collector would."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from app.settings import Settings
from tests.helpers import api_ready, free_port, wait_until
from tests.worker.processes import ApiProcess, worker_processes

SAMPLE = "/v1/models/tiny-sampler/sample"


@dataclass(frozen=True, slots=True)
class Exported:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    links: tuple[tuple[str, str], ...]  # (trace id, span id)


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP traces endpoint on loopback: every span it was sent, decoded."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[Exported] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def take(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        found = []
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    links = tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links)
                    found.append(
                        Exported(
                            attributes.get("service.name", ""),
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            links,
                        )
                    )
        with self.lock:
            self.spans += found

    def named(self, name: str, service: str) -> list[Exported]:
        with self.lock:
            return [s for s in self.spans if s.name == name and s.service == service]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        assert self.path == "/v1/traces", self.path
        self.server.take(body)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_: object) -> None:  # quiet
        pass


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """The receiver, named in the environment the api and worker processes inherit."""
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # export every 100 ms, not 5 s
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_one_trace_spans_api_and_worker(tiny: Settings, receiver: Receiver) -> None:
    settings = tiny.model_copy(update={"port": free_port()})
    base = f"http://127.0.0.1:{settings.port}"
    api = ApiProcess(settings, workers=1)
    try:
        with worker_processes(settings) as (worker,):
            worker.log.wait_for("worker.loaded version=tiny-sampler:1")
            wait_until(lambda: api_ready(base), timeout_s=120, awaiting="the api to be ready")
            answer = httpx.post(f"{base}{SAMPLE}", json={"seed": 3}, timeout=30)
            assert answer.status_code == 200, answer.text
            wait_until(
                lambda: (
                    receiver.named("reply", "hanmo-worker")
                    and receiver.named("render", "hanmo-api")
                ),
                timeout_s=60,
                awaiting="the api's and the worker's spans",
            )
    finally:
        api.stop()
    (server,) = list(receiver.named("POST /v1/models/{name}/sample", "hanmo-api"))
    trace = [s for s in receiver.spans if s.trace_id == server.trace_id]
    by_name = {s.name: s for s in trace}
    # the api's spans, under FastAPI's server span (its endpoint span between)
    for name in ("validate", "enqueue", "render"):
        assert by_name[name].service == "hanmo-api"
        assert server.span_id in ancestors(by_name[name], trace), name
    enqueue = by_name["enqueue"]
    # the worker's, in the same trace: the job's wait and its batch (of this one job: a child)
    for name in ("queue wait", "batch", "graph run", "reply"):
        assert by_name[name].service == "hanmo-worker", name
    assert by_name["queue wait"].parent_id == enqueue.span_id
    batch = by_name["batch"]
    assert batch.parent_id == enqueue.span_id
    assert (server.trace_id, enqueue.span_id) in batch.links
    assert (server.trace_id, batch.span_id) in by_name["queue wait"].links
    assert by_name["graph run"].parent_id == batch.span_id
    assert by_name["reply"].parent_id == batch.span_id


def ancestors(span: Exported, trace: list[Exported]) -> list[str]:
    """The ids of the span's parent, its parent's, and so on, within the trace."""
    by_id = {s.span_id: s for s in trace}
    found = []
    while span.parent_id in by_id:
        found.append(span.parent_id)
        span = by_id[span.parent_id]
    return found
