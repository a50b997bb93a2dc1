"""Style transfer's glyphs as Server-Sent Events (issue 49, item 2): `Accept: text/event-stream`
on POST .../style-transfer, and a generate job's GET /v1/jobs/{id}/events. The shipped model,
a real worker (chunks of 16 glyphs, the card's max_batch_rows), real Redis, a live uvicorn."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from app.queue import keys
from app.redis_conn import sync_client
from app.services.registration import register_directory
from app.settings import Settings
from tests.api.test_job_events import Event, read_events
from tests.api.test_style_transfer import MODEL, URL, references, supported_text
from tests.helpers import live_api, wait_until, worker_thread

STREAM = {"Accept": "text/event-stream"}


@pytest.fixture
def served(settings: Settings) -> Settings:
    register_directory(settings, MODEL, "production")
    return settings


def parse_events(lines: Any, into: list[Event], limit: int = 0) -> None:
    """Events from SSE lines, appended as each ends; with `limit`, only that many."""
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            continue
        if line:
            name, _, value = line.partition(": ")
            fields[name] = value
            continue
        if fields:
            into.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
        fields = {}
        if limit and len(into) >= limit:
            return


def post_events(
    client: httpx.Client, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[httpx.Response, list[Event]]:
    events: list[Event] = []
    with client.stream("POST", URL, json=body, headers={**STREAM, **(headers or {})}) as response:
        if response.status_code == 200:
            parse_events(response.iter_lines(), events)
        else:
            response.read()
    return response, events


def test_glyphs_stream_in_order_and_equal_the_json_answer(served: Settings) -> None:
    """130 characters: nine chunks of 16; the first eight reach the api before the job ends."""
    text = supported_text(130)
    body = {"references": references(), "text": text, "formats": ["png", "svg"], "sheet": True}
    redis = sync_client(served.redis_url)
    with worker_thread(served), live_api(served) as client:
        response, events = post_events(client, body)
        job_id = response.headers["X-Hanmo-Job"]
        written = redis.xlen(keys.partial(job_id))
        answer = client.post(URL, json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert answer.status_code == 200, answer.text
    want = answer.json()
    assert written == 8  # chunks 1-8 came early; the last came with the result
    assert [e[0] for e in events] == [*range(130), 1000]
    assert [e[1] for e in events] == ["glyph"] * 130 + ["done"]
    glyphs = [e[2] for e in events[:-1]]
    assert [g.pop("index") for g in glyphs] == list(range(130))
    assert glyphs == want["glyphs"]  # the same PNG and SVG, byte for byte
    done = events[-1][2]
    assert done["job_id"] == job_id
    assert {k: v for k, v in done.items() if k != "job_id"} == {
        k: v for k, v in want.items() if k not in ("glyphs", "job_id")
    }


def test_a_deadline_after_the_headers_is_a_failed_event(served: Settings) -> None:
    """The one worker is busy with 256 glyphs; a streamed request queued behind it with a short
    deadline gets its headers, then `failed` with the 504 problem (admission by cost and the
    worker's look at its queue are off, so it is queued rather than refused: the look would
    answer it 429 as soon as it saw the big job ahead, tests/queue/test_late.py)."""
    settings = served.model_copy(update={"admit_by_cost": False, "queue_look_s": 0})
    with worker_thread(settings), live_api(settings) as client:
        style = client.post("/v1/styles", json={"model": "glyph-style", "references": references()})
        style_id = style.json()["style_id"]
        long = {"style_id": style_id, "text": supported_text(256)}
        with httpx.Client(base_url=client.base_url, timeout=60) as other:
            busy = threading.Thread(target=other.post, args=(URL,), kwargs={"json": long})
            busy.start()
            time.sleep(0.5)  # it is queued first
            response, events = post_events(
                client, {"style_id": style_id, "text": supported_text(3), "timeout_ms": 300}
            )
            busy.join(60)
    assert response.status_code == 200
    assert [(e[0], e[1]) for e in events] == [(1000, "failed")]
    problem = events[0][2]
    assert (problem["status"], problem["title"], problem["instance"]) == (
        504,
        "Deadline exceeded",
        URL,
    )
    assert problem["request_id"] == response.headers["X-Request-Id"]  # as a response's would


def test_a_client_that_leaves_stops_the_work(served: Settings) -> None:
    """The client closes the stream after its first glyph: the api cancels the job (abandoned
    while running), and the worker answers it 499 at the next chunk instead of finishing."""
    redis = sync_client(served.redis_url)
    body = {"references": references(), "text": supported_text(256)}
    with worker_thread(served), live_api(served) as client:
        with client.stream("POST", URL, json=body, headers=STREAM) as response:
            job_id = response.headers["X-Hanmo-Job"]
            for line in response.iter_lines():
                if line.startswith("event: glyph"):
                    break
        # the record expires 5 s after the job ends (a synchronous job's): read it as it ends
        wait_until(
            lambda: redis.hget(keys.job(job_id), "status") in (b"failed", b"done"),
            timeout_s=60,
            awaiting="the job to end",
        )
        status = redis.hget(keys.job(job_id), "status")
        result = bytes(redis.get(keys.result(job_id)) or b"")
        metrics = client.get("/metrics").text
    assert status == b"failed"
    assert b'"status": 499' in result
    # counted as the JSON route counts it (the api's ClientGone, the worker's 499 reply)
    assert 'hanmo_failures_total{model="glyph-style",reason="client-gone"}' in metrics


def test_limits_and_refusals_come_before_the_stream(served: Settings) -> None:
    """One place for event streams: a second stream is 503 while the first flows; bad input
    is the JSON route's 422; `Prefer: respond-async` still answers 202."""
    settings = served.model_copy(update={"max_event_streams": 1})
    body = {"references": references(), "text": supported_text(256)}
    with worker_thread(settings), live_api(settings) as client:
        first: list[Event] = []
        with httpx.Client(base_url=client.base_url, timeout=60) as other:
            with other.stream("POST", URL, json=body, headers=STREAM) as response:
                lines = response.iter_lines()
                reader = threading.Thread(target=parse_events, args=(lines, first))
                reader.start()
                wait_until(lambda: bool(first), timeout_s=60, awaiting="the first glyph")
                refused, _ = post_events(client, {**body, "text": supported_text(2)})
                reader.join(60)
        too_long, _ = post_events(client, {**body, "text": "字" * 257})
        unwritable, _ = post_events(client, {**body, "text": "Ω"})
        later = client.post(URL, json=body, headers={**STREAM, "Prefer": "respond-async"})
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["Retry-After"] == "5"
    assert first[-1][1] == "done"
    for bad in (too_long, unwritable):
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
    assert later.status_code == 202


def test_a_job_event_stream_resumes_its_glyphs_without_duplicates(served: Settings) -> None:
    """The resumable path: `Prefer: respond-async` (with Accept: text/event-stream, the job
    writes its rows as they finish), then GET /v1/jobs/{id}/events, left after some glyphs and
    resumed with Last-Event-ID: every glyph once, in order, equal to the JSON answer's."""
    text = supported_text(200)
    body = {"references": references(), "text": text}
    with worker_thread(served), live_api(served) as client:
        accepted = client.post(URL, json=body, headers={**STREAM, "Prefer": "respond-async"})
        job_id = accepted.json()["job_id"]
        first: list[Event] = []
        with client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
            parse_events(response.iter_lines(), first, limit=1)  # then the client leaves
        rest = read_events(client, job_id, last=str(first[-1][0]))
        again = read_events(client, job_id, last="1000")
        answer = client.post(URL, json=body).json()
    events = first + rest
    assert [e[0] for e in events] == [*range(200), 1000]
    assert events[-1][1] == "done"
    assert events[-1][2]["href"] == f"/v1/jobs/{job_id}"
    assert [{k: v for k, v in e[2].items() if k != "index"} for e in events[:-1]] == answer[
        "glyphs"
    ]
    assert again == []


def test_a_font_job_streams_its_progress_through_its_events(served: Settings) -> None:
    """POST /v1/styles/{id}/font answers 202; the job's event stream shows its progress as its
    worker builds the font in steps of 16 glyphs, then `done` with where the font is read."""
    with worker_thread(served), live_api(served) as client:
        style = client.post("/v1/styles", json={"model": "glyph-style", "references": references()})
        accepted = client.post(
            f"/v1/styles/{style.json()['style_id']}/font", json={"chars": supported_text(96)}
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        events = read_events(client, job_id)
    ids = [e[0] for e in events]
    assert ids == sorted(set(ids))
    assert [e[1] for e in events[:-1]] == ["progress"] * (len(events) - 1)
    assert any(0 < e[2]["progress"] < 1 for e in events[:-1]), events  # seen while it ran
    assert events[-1] == (
        1000,
        "done",
        {"job_id": job_id, "status": "done", "href": f"/v1/jobs/{job_id}"},
    )
