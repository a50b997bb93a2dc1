"""GET /v1/jobs/{id}/events (issue 49, item 2): a job's progress and end as Server-Sent Events
over a live uvicorn, resumable with Last-Event-ID without duplicates."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from app.queue import keys
from app.redis_conn import sync_client
from app.settings import Settings
from tests.helpers import live_api, wait_until, worker_thread

SAMPLE = "/v1/models/tiny-sampler/sample"
ASYNC = {"Prefer": "respond-async"}
Event = tuple[int, str, dict[str, Any]]


def read_events(
    client: httpx.Client, job_id: str, last: str | None = None, into: list[Event] | None = None
) -> list[Event]:
    """Every event of one connection, until the server ends the stream (appended to `into`
    as each arrives, when given)."""
    headers = {"Last-Event-ID": last} if last is not None else {}
    events: list[Event] = [] if into is None else into
    with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line.startswith(":"):
                continue
            if not line:
                if fields:
                    events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
                fields = {}
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
    return events


def test_a_job_streams_its_start_and_where_its_result_is(tiny: Settings) -> None:
    with worker_thread(tiny), live_api(tiny) as client:
        job_id = client.post(SAMPLE, json={"n": 2, "seed": 5}, headers=ASYNC).json()["job_id"]
        events = read_events(client, job_id)
        again = read_events(client, job_id, last=str(events[-1][0]))
        result = client.get(events[-1][2]["href"]).json()
    assert events[-1] == (
        1000,
        "done",
        {"job_id": job_id, "status": "done", "href": f"/v1/jobs/{job_id}"},
    )
    assert [e[0] for e in events] == sorted({e[0] for e in events})  # ids only grow
    assert again == []  # it had everything: nothing twice
    assert result["status"] == "done"


def test_progress_resumes_after_the_last_event_and_a_cancel_ends_the_stream(
    tiny: Settings,
) -> None:
    """No worker runs: the job stays queued while its progress field moves (written as a
    long job's worker writes it, app/worker/runner.py), then it is cancelled."""
    redis = sync_client(tiny.redis_url)
    with live_api(tiny) as client:
        job_id = client.post(SAMPLE, json={"seed": 1}, headers=ASYNC).json()["job_id"]
        first: list[Event] = []
        reader = threading.Thread(target=read_events, args=(client, job_id), kwargs={"into": first})
        reader.start()
        wait_until(lambda: bool(first) or not reader.is_alive(), awaiting="the first event")
        redis.hset(keys.job(job_id), "progress", 0.25)
        wait_until(lambda: len(first) >= 2, awaiting="the progress event of 0.25")
        redis.hset(keys.job(job_id), "progress", 0.5)
        wait_until(lambda: len(first) >= 3, awaiting="the progress event of 0.5")
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
        reader.join(30)
        resumed = read_events(client, job_id, last="250")
        done = read_events(client, job_id, last="1000")
    assert first[0] == (0, "progress", {"job_id": job_id, "status": "queued", "progress": 0.0})
    assert [e[0] for e in first][-1] == 1000
    assert first[-1][1] == "failed"
    assert first[-1][2]["status"] == 409  # the cancel's problem
    assert [e[0] for e in first] == [0, 250, 500, 1000]
    assert [e[0] for e in resumed] == [1000]  # only what came after event 250
    assert done == []


def test_unknown_jobs_and_bad_last_event_ids_are_problems(tiny: Settings) -> None:
    with live_api(tiny) as client:
        missing = client.get(f"/v1/jobs/{'0' * 24}/events")
        job_id = client.post(SAMPLE, json={"seed": 1}, headers=ASYNC).json()["job_id"]
        bad = client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "1001"})
        worse = client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "x" * 9})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert worse.status_code == 422
