"""Pinned versions that no alias holds are served (README: a request naming a `version`
bypasses the split): a worker loads them on demand, at most `max_unaliased_versions` at once,
least recently wanted evicted; one that cannot load answers a problem at once, never a 504;
and jobs left in a stream that no worker will read are failed, not kept for ever. Real Redis,
database, ONNX Runtime and HTTP through a live api."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from app.queue import keys
from app.redis_conn import sync_client
from app.registry import artifacts
from app.services.registration import register_directory
from app.settings import Settings
from tests.api.test_admin import new_key
from tests.helpers import live_api, wait_until, worker_thread
from training import tiny_sampler

SAMPLE = "/v1/models/tiny-sampler/sample"
ASYNC = {"Prefer": "respond-async"}


def pinned(
    http: httpx.Client, version: int, seed: int = 1, headers: dict[str, str] | None = None
) -> httpx.Response:
    return http.post(SAMPLE, json={"n": 2, "seed": seed, "version": version}, headers=headers)


def job_when_finished(http: httpx.Client, job_id: str) -> dict[str, Any]:
    """GET /v1/jobs/{id} once the job has finished."""
    seen: list[dict[str, Any]] = []

    def finished() -> bool:
        seen.append(http.get(f"/v1/jobs/{job_id}").json())
        return seen[-1]["status"] in ("done", "failed", "cancelled")

    wait_until(finished, 60, awaiting=f"job {job_id} to finish", seen=lambda: seen[-1])
    return seen[-1]


def test_a_pinned_unaliased_version_answers_sync_and_async(tiny: Settings, tmp_path: Path) -> None:
    v2 = register_directory(tiny, tiny_sampler.build(tmp_path / "v2", seed=1), None)
    assert v2.version == 2
    with worker_thread(tiny) as worker, live_api(tiny) as http:
        sync = pinned(http, 2)
        accepted = pinned(http, 2, seed=2, headers=ASYNC)
        assert accepted.status_code == 202, accepted.text
        job = job_when_finished(http, accepted.json()["job_id"])
        loaded = sorted(m.served.key for m in worker.models.values())
    assert sync.status_code == 200, sync.text
    assert (sync.json()["version"], sync.headers["X-Hanmo-Version"]) == (2, "2")
    assert (job["status"], job["version"], job["result"]["version"]) == ("done", 2, 2)
    assert loaded == ["tiny-sampler:1", "tiny-sampler:2"]  # the alias's version stays loaded


def test_two_pinned_versions_take_turns_in_one_unaliased_slot(
    tiny: Settings, tmp_path: Path
) -> None:
    settings = tiny.model_copy(update={"max_unaliased_versions": 1})
    for seed in (1, 2):  # versions 2 and 3, neither aliased
        register_directory(settings, tiny_sampler.build(tmp_path / f"s{seed}", seed=seed), None)
    answers: list[tuple[int, int]] = []
    most_held = 0
    with worker_thread(settings) as worker, live_api(settings) as http:
        for turn, version in enumerate([2, 3, 2, 3]):
            response = pinned(http, version, seed=turn)
            assert response.status_code == 200, response.text
            answers.append((version, response.json()["version"]))
            most_held = max(most_held, len(worker.model_set.pinned))
        held = sorted(m.served.key for m in worker.models.values())
    assert answers == [(2, 2), (3, 3), (2, 2), (3, 3)]
    assert most_held == 1
    assert held == ["tiny-sampler:1", "tiny-sampler:3"]  # v2, least recently wanted, evicted


def test_a_pinned_version_that_cannot_load_answers_503_at_once(
    tiny: Settings, tmp_path: Path
) -> None:
    v2 = register_directory(tiny, tiny_sampler.build(tmp_path / "v2", seed=1), None)
    stored = Path(artifacts.located(v2.artifact_uri, tiny))
    for graph in stored.glob("*.onnx"):  # READY in the registry, but its files are gone
        graph.unlink()
    with worker_thread(tiny), live_api(tiny) as http:
        start = time.monotonic()
        first = pinned(http, 2)
        first_s = time.monotonic() - start
        again = pinned(http, 2, seed=2)  # the api now knows: it answers without queueing
    assert first.status_code == 503, first.text
    assert first.headers["content-type"] == "application/problem+json"
    assert "version 2 of tiny-sampler cannot be served" in first.json()["detail"]
    assert first_s < tiny.default_timeout_ms / 1000 / 2  # not a wait for the deadline
    assert again.status_code == 503
    assert again.json()["detail"] == first.json()["detail"]


def test_with_no_unaliased_slot_a_pinned_version_answers_503(
    tiny: Settings, tmp_path: Path
) -> None:
    settings = tiny.model_copy(update={"max_unaliased_versions": 0})
    register_directory(settings, tiny_sampler.build(tmp_path / "v2", seed=1), None)
    with worker_thread(settings), live_api(settings) as http:
        refused = pinned(http, 2)
        aliased = http.post(SAMPLE, json={"n": 2, "seed": 1})
    assert refused.status_code == 503, refused.text
    assert "no version that no alias holds" in refused.json()["detail"]
    assert aliased.status_code == 200


def test_jobs_left_in_a_stream_no_worker_will_read_are_failed(
    tiny: Settings, tmp_path: Path
) -> None:
    settings = tiny.model_copy(update={"drain_s": 0.0})
    register_directory(settings, tiny_sampler.build(tmp_path / "v2", seed=1), None)
    redis = sync_client(settings.redis_url)
    with live_api(settings) as http:  # no worker yet: the job waits in v2's stream
        accepted = pinned(http, 2, headers=ASYNC)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        assert redis.sismember(keys.STREAMS, keys.stream("tiny-sampler", 2))
        redis.zrem(keys.WANTED, "tiny-sampler:2")  # no request named v2 lately
        with worker_thread(settings):
            job = job_when_finished(http, job_id)
    assert job["status"] == "failed"
    assert job["problem"]["status"] == 503
    assert "version 2 of tiny-sampler is no longer served" in job["problem"]["detail"]
    assert redis.xlen(keys.stream("tiny-sampler", 2)) == 0


def test_a_stream_made_before_the_list_of_streams_is_swept_too(
    tiny: Settings, tmp_path: Path
) -> None:
    settings = tiny.model_copy(update={"drain_s": 0.0})
    register_directory(settings, tiny_sampler.build(tmp_path / "v2", seed=1), None)
    redis = sync_client(settings.redis_url)
    with live_api(settings) as http:
        job_id = pinned(http, 2, headers=ASYNC).json()["job_id"]
        redis.delete(keys.STREAMS, keys.WANTED)  # as an older hanmo left it
        with worker_thread(settings):
            job = job_when_finished(http, job_id)
    assert job["status"] == "failed"
    assert "no longer served" in job["problem"]["detail"]


def test_jobs_waiting_for_a_version_archived_meanwhile_are_failed(
    tiny: Settings, tmp_path: Path
) -> None:
    settings = tiny.model_copy(update={"drain_s": 0.0})
    register_directory(settings, tiny_sampler.build(tmp_path / "v2", seed=1), None)
    admin = {"Authorization": f"Bearer {new_key(settings, 'admin')}"}
    with live_api(settings) as http:
        job_id = pinned(http, 2, headers=ASYNC).json()["job_id"]  # wanted, and queued
        archived = http.post("/admin/models/tiny-sampler/versions/2/archive", headers=admin)
        assert archived.status_code == 200, archived.text
        with worker_thread(settings):
            job = job_when_finished(http, job_id)
        again = pinned(http, 2)
    assert job["status"] == "failed"
    assert "version 2 of tiny-sampler is no longer served" in job["problem"]["detail"]
    assert again.status_code == 404  # an archived version is refused before it is queued
