"""Long jobs in the worker's lane (app/worker/lanes.py): a font is written in steps, with other
models' jobs answered between them, and a font whose worker is killed resumes from its last
finished step on the next worker.

Every wait is on an event (a job's state, a worker's log line), never on how long something
should take."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import httpx
import numpy as np

from app.fonts import build_ttf, font_from_contours, glyph_contours, pack_contours, unpack_contours
from app.queue import keys
from app.redis_conn import sync_client
from app.services.registration import register_directory
from app.settings import Settings
from tests.api.test_style_transfer import MODEL, references, supported_text
from tests.helpers import live_api, wait_for_progress, wait_until, worker_thread
from tests.worker.processes import worker_processes
from tests.worker.test_recovery import wait_ready, worker_pid

STALL_S = 120.0
Job = dict[str, object]


def job(client: httpx.Client, job_id: str) -> Job:
    body: Job = client.get(f"/v1/jobs/{job_id}").json()
    assert body["status"] in ("queued", "running", "done"), body
    return body


def start_font(client: httpx.Client, chars: str) -> str:
    style = client.post("/v1/styles", json={"model": "glyph-style", "references": references()})
    assert style.status_code == 201, style.text
    accepted = client.post(
        f"/v1/styles/{style.json()['style_id']}/font", json={"chars": chars, "family": "Lane"}
    )
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["job_id"])


def font_bytes(client: httpx.Client, job_id: str) -> bytes:
    wait_for_progress(
        f"font job {job_id} to finish",
        lambda: job(client, job_id),
        lambda seen: seen["status"] == "done",
        STALL_S,
    )
    return client.get(f"/v1/jobs/{job_id}", headers={"Accept": "font/ttf"}).content


def test_contours_pack_and_the_font_is_the_same_bytes_from_them() -> None:
    rng = np.random.default_rng(0)
    ink = (rng.random((3, 32, 32)) < 0.4).astype(np.float32)
    ink[2] = 0  # a glyph with no ink: no contours
    traced = [glyph_contours(g) for g in ink]
    codepoints = np.array([0x4E00, 0x4E01, 0x4E02])
    assert unpack_contours(pack_contours(traced)) == traced
    once = build_ttf(ink, codepoints, "Same")
    assert font_from_contours(unpack_contours(pack_contours(traced)), codepoints, "Same") == once
    assert build_ttf(ink, codepoints, "Same") == once  # no build time in the bytes


def test_another_models_sample_is_answered_while_a_font_is_written(tiny: Settings) -> None:
    """One worker thread holds the tiny sampler and the glyph model; a font of 300 one-glyph
    steps is running when the sample is asked for, and still running when it is answered."""
    settings = tiny.model_copy(update={"long_job_chunk": 1, "visibility_timeout_ms": 3_600_000})
    register_directory(settings, MODEL, "production")
    with worker_thread(settings) as worker, live_api(settings) as client:
        wait_until(lambda: len(worker.models) == 2, STALL_S, awaiting="both models loaded")
        job_id = start_font(client, supported_text(300))
        wait_for_progress(
            "the font job to make progress",
            lambda: job(client, job_id),
            lambda seen: float(seen.get("progress") or 0) > 0,  # type: ignore[arg-type]
            STALL_S,
        )
        sample = client.post("/v1/models/tiny-sampler/sample", json={"seed": 1})
        font = job(client, job_id)
        ready = client.get("/readyz").json()
    assert sample.status_code == 200, sample.text
    assert font["status"] == "running"
    assert float(font["progress"]) < 1  # type: ignore[arg-type]
    assert ready["checks"]["interactive"] == {"glyph-style:1": True, "tiny-sampler:1": True}


def test_a_font_whose_worker_is_killed_resumes_from_its_last_step(
    settings: Settings, tmp_path: Path
) -> None:
    """SIGKILL the worker process writing a font once some steps are stored; the restarted
    one resumes: no stored step is computed again, progress never goes back, and the font's
    bytes are those of a run that nobody interrupted."""
    settings = settings.model_copy(update={"long_job_chunk": 4, "visibility_timeout_ms": 3_600_000})
    register_directory(settings, MODEL, "production")
    redis = sync_client(settings.redis_url)
    chars = supported_text(120)  # 30 steps
    with worker_processes(settings, 1) as (worker,), live_api(settings) as client:
        worker.log.wait_for("worker.loaded version=glyph-style:1")
        wait_ready(client)
        job_id = start_font(client, chars)
        steps = keys.steps(job_id)
        wait_for_progress(
            "three steps of the font to be stored",
            lambda: int(redis.hget(steps, "computed") or 0),
            lambda computed: computed >= 3,
            STALL_S,
            interval_s=0.01,
        )
        victim = redis.hget(keys.job(job_id), "worker").decode()
        os.kill(worker_pid(victim), signal.SIGKILL)
        stored = len([f for f in redis.hkeys(steps) if f.isdigit()])
        floor = float(job(client, job_id).get("progress") or 0)  # type: ignore[arg-type]
        seen: list[float] = []

        def watch() -> Job:
            body = job(client, job_id)
            seen.append(float(body.get("progress") or 0))  # type: ignore[arg-type]
            return body

        wait_for_progress(
            "the font to finish on the restarted worker",
            watch,
            lambda body: body["status"] == "done",
            STALL_S,
        )
        resumed = font_bytes(client, job_id)
        uninterrupted = font_bytes(client, start_font(client, chars))
    done = worker.log.matching(f"worker.long_job_done job={job_id}")
    assert len(done) == 1, done
    assert re.search(r"steps=30 computed=30\b", done[0]), done[0]
    started = worker.log.matching(f"worker.long_job job={job_id}")
    assert len(started) == 2, started  # the killed worker's start, then the resumed one's
    assert f"resumed={stored}" in started[1], started
    assert stored >= 3
    assert all(p >= floor for p in seen), (floor, seen)
    assert resumed == uninterrupted
    assert resumed[:4] == b"\x00\x01\x00\x00"  # a TrueType font


def test_a_font_taken_over_by_a_worker_with_another_chunk_steps_by_the_stored_one(
    settings: Settings,
) -> None:
    """A font begun in steps of 4 glyphs, whose worker stops, is taken over by a worker whose
    long_job_chunk is 1: the taker steps by the chunk stored with the steps (4), keeps them,
    and the font's bytes are those of an uninterrupted run. (Before, it took the stored steps
    of 4 glyphs for steps of 1 and the font failed at its build: ValueError from zip.)"""
    four = settings.model_copy(update={"long_job_chunk": 4, "visibility_timeout_ms": 3_600_000})
    register_directory(four, MODEL, "production")
    redis = sync_client(four.redis_url)
    chars = supported_text(200)  # 50 steps of 4
    with live_api(four) as client:
        with worker_thread(four, "worker-four"):
            job_id = start_font(client, chars)
            wait_for_progress(
                "three steps of the font to be stored",
                lambda: int(redis.hget(keys.steps(job_id), "computed") or 0),
                lambda computed: computed >= 3,
                STALL_S,
                interval_s=0.01,
            )
        # worker-four stops after the step in hand; its heartbeat goes, its entry stays pending
        assert job(client, job_id)["status"] == "running"
        stored = {f for f in redis.hkeys(keys.steps(job_id)) if f.isdigit()}
        one = four.model_copy(update={"long_job_chunk": 1})
        with worker_thread(one, "worker-one"):
            resumed = font_bytes(client, job_id)
        with worker_thread(four, "worker-four-again"):
            uninterrupted = font_bytes(client, start_font(client, chars))
    assert 3 <= len(stored) < 50
    assert resumed == uninterrupted
    assert resumed[:4] == b"\x00\x01\x00\x00"
