"""A batch's spans and log context (app/worker/traces.py): one batch span linked to each of its
jobs' traces, each job's queue wait in its own trace linked back; the requests' ids on the
batch's log lines; nothing at all while tracing is off."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app import tracing
from app.logs import REQUEST_ID
from app.queue.entries import Job
from app.registry.service import ServedVersion
from app.worker.traces import (
    MAX_LOGGED_IDS,
    batch_context,
    record_wait,
    request_ids,
    step_context,
)

SERVED = ServedVersion("tiny-sampler", 3, "sampler", "onnx", "0" * 64, "tiny/3", {})
ENQUEUED_MS = 1_800_000_000_000


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process for one test, its spans kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setitem(tracing._state, "tracer", provider.get_tracer("test"))
    monkeypatch.setitem(tracing._state, "provider", provider)
    yield exporter
    provider.shutdown()


def enqueued(count: int) -> list[Job]:
    """Jobs as the worker parses them, each sent by a request with its own trace."""
    jobs = []
    for index in range(count):
        with tracing.span("enqueue"):
            parent = tracing.traceparent()
        jobs.append(
            Job(
                entry_id=f"{ENQUEUED_MS + index}-0",
                job_id=f"job-{index}",
                inputs={"z": np.zeros((2, 4), np.float32)},
                deadline_ms=ENQUEUED_MS + 60_000,
                reply="reply",
                started_ms=ENQUEUED_MS + 40,
                trace=parent,
                request_id=f"req-{index}",
            )
        )
    return jobs


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def test_a_batch_of_many_links_every_job_and_each_job_waits_in_its_trace(
    exported: InMemorySpanExporter,
) -> None:
    jobs = enqueued(3)
    with batch_context(SERVED, jobs, "worker-1"), tracing.span("graph run"):
        pass
    spans = exported.get_finished_spans()
    enqueues = named(spans, "enqueue")
    (batch,) = named(spans, "batch")
    (run,) = named(spans, "graph run")
    waits = named(spans, "queue wait")
    assert batch.parent is None  # its own trace: it belongs to none of the three more than another
    assert {link.context.span_id for link in batch.links} == {s.context.span_id for s in enqueues}
    assert batch.attributes is not None
    assert batch.attributes["hanmo.batch.rows"] == 6
    assert run.parent is not None
    assert run.parent.span_id == batch.context.span_id
    assert len(waits) == 3
    for wait, enqueue in zip(waits, enqueues, strict=True):
        assert wait.context.trace_id == enqueue.context.trace_id
        assert wait.parent is not None
        assert wait.parent.span_id == enqueue.context.span_id
        assert [link.context.span_id for link in wait.links] == [batch.context.span_id]
        assert wait.end_time is not None
        assert wait.start_time is not None
        assert wait.end_time - wait.start_time == pytest.approx(40e6, abs=3e6)  # ns


def test_a_batch_of_one_is_a_child_of_its_job(exported: InMemorySpanExporter) -> None:
    (job,) = enqueued(1)
    with batch_context(SERVED, [job], "worker-1"):
        pass
    spans = exported.get_finished_spans()
    (enqueue,) = named(spans, "enqueue")
    (batch,) = named(spans, "batch")
    assert batch.context.trace_id == enqueue.context.trace_id
    assert batch.parent is not None
    assert batch.parent.span_id == enqueue.context.span_id


def test_a_long_jobs_wait_and_steps_are_in_its_trace(exported: InMemorySpanExporter) -> None:
    (job,) = enqueued(1)
    record_wait(job)
    seen = []
    for done in range(2):
        with step_context(job, done):
            seen.append(REQUEST_ID.get())
    spans = exported.get_finished_spans()
    (enqueue,) = named(spans, "enqueue")
    (wait,) = named(spans, "queue wait")
    steps = named(spans, "step")
    assert seen == ["req-0", "req-0"]
    assert not wait.links  # it ran in no batch
    assert len(steps) == 2
    for span in (wait, *steps):
        assert span.context.trace_id == enqueue.context.trace_id
        assert span.parent is not None
        assert span.parent.span_id == enqueue.context.span_id


def test_the_batch_log_lines_name_its_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(tracing._state, "tracer", None)
    jobs = enqueued(2)  # tracing off: no traceparent, no span
    assert all(job.trace == "" for job in jobs)
    seen = []
    with batch_context(SERVED, jobs, "worker-1"):
        seen.append(REQUEST_ID.get())
    assert seen == ["req-0,req-1"]
    assert REQUEST_ID.get() == ""  # reset after the batch
    many = [Job("1-0", f"j{i}", {}, 0, "", request_id=f"r{i}") for i in range(20)]
    assert request_ids(many).endswith(f"r{MAX_LOGGED_IDS - 1},+{20 - MAX_LOGGED_IDS}")


def test_tracing_off_costs_one_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(tracing._state, "tracer", None)
    assert tracing.span("validate") is tracing.OFF
    assert tracing.traceparent() == ""
    assert tracing.remote("00-not-a-traceparent") is None
