"""A synchronous answer rendered on the api shares the request's one deadline (issue 46): its
last job is due early by the time this api process has been taking to render such answers
(app/api/deadlines.py), so a 512 px sheet does not arrive seconds after the deadline the
client set. Real api (ASGI), real worker thread, real ONNX Runtime, real Redis."""

from __future__ import annotations

import json
import math
import time

import pytest
from fastapi.testclient import TestClient

from app.api.deadlines import RENDER_MEMORY_S, RenderPace, render_key
from app.api.main import create_app
from app.errors import Overloaded
from app.kinds.catalog import KINDS
from app.queue import keys
from app.queue.clock import now_ms
from app.redis_conn import sync_client
from app.services.registration import register_directory
from app.settings import Settings
from tests.api.test_style_transfer import MODEL, URL, references, supported_text
from tests.helpers import worker_thread

# 64 distinct characters on a 128 px sheet: (64 glyphs + 64 cells) x (128 / 64)^2 render rows
SHEET = {"text": supported_text(64), "size": 128}
SHEET_ROWS = 512


def test_a_render_pace_reserves_its_share_of_the_deadline() -> None:
    pace, png, st = RenderPace(), "image/png", "style_transfer"
    deadline = now_ms() + 10_000
    assert pace.job_deadline(st, png, 500, deadline) == deadline  # not measured, no prior
    prior = KINDS[st].render_prior_s  # what the style kind assumes till it is measured
    prior_ms = math.ceil(500 * prior * 1000)
    assert pace.job_deadline(st, png, 500, deadline, prior) == deadline - prior_ms
    pace.learn(st, png, 100, 0.5)  # 5 ms a row
    pace.learn(st, png, 100, 1.5)  # 15 ms a row: smoothed to 8 ms
    assert pace.seconds_per_row[render_key(st, png)] == pytest.approx(0.008)
    assert pace.job_deadline(st, png, 500, deadline) == deadline - 4000
    assert pace.job_deadline(st, None, 500, deadline) == deadline  # the JSON answer: apart
    assert pace.job_deadline("sampler", png, 500, deadline) == deadline  # another kind
    with pytest.raises(Overloaded) as refused:
        pace.job_deadline(st, png, 2000, deadline)  # 16 s of render in 10 s
    assert refused.value.problem()["retry_after_s"] == 16
    pace.measured[render_key(st, png)] -= RENDER_MEMORY_S + 1  # not measured again since
    assert pace.job_deadline(st, png, 500, deadline, prior) == deadline - prior_ms


def set_pace(pace: RenderPace, accept: str | None, seconds_per_row: float) -> None:
    pace.seconds_per_row[render_key("style_transfer", accept)] = seconds_per_row
    pace.measured[render_key("style_transfer", accept)] = time.monotonic()


@pytest.fixture
def served(settings: Settings) -> Settings:
    """The style model served; delivered jobs' records kept, so the test reads both steps'."""
    register_directory(settings, MODEL, "production")
    return settings.model_copy(update={"keep_sync_results": True})


def all_jobs(settings: Settings) -> list[dict[str, str]]:
    redis = sync_client(settings.redis_url)
    found = []
    for key in redis.scan_iter(match=keys.job("*")):
        job = {k.decode(): v.decode() for k, v in redis.hgetall(key).items()}
        found.append(job | {"op": json.loads(job["meta"])["op"]})
    return found


def jobs_by_op(settings: Settings) -> dict[str, dict[str, str]]:
    return {job["op"]: job for job in all_jobs(settings)}


def test_a_sheet_answer_reserves_its_render_time_from_the_generate_job(served: Settings) -> None:
    app = create_app(served)
    with worker_thread(served), TestClient(app) as client:
        pace = app.state.hanmo.render_pace
        set_pace(pace, "image/png", 1 / 512)  # 512 rows: 1,000 ms
        answer = client.post(
            URL,
            json={"references": references(), **SHEET, "timeout_ms": 20_000},
            headers={"Accept": "image/png"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "image/png"
        jobs = jobs_by_op(served)
    encode, generate = int(jobs["encode"]["deadline_ms"]), int(jobs["generate"]["deadline_ms"])
    assert encode - generate == 1000  # the render's share, off the last job only
    assert pace.seconds_per_row[render_key("style_transfer", "image/png")] != 1 / 512  # measured


def test_an_answer_whose_render_outlasts_the_time_left_is_refused(served: Settings) -> None:
    app = create_app(served)
    with worker_thread(served), TestClient(app) as client:
        set_pace(app.state.hanmo.render_pace, "image/png", 0.05)  # 512 rows: 25.6 s
        set_pace(app.state.hanmo.render_pace, None, 0.05)
        answer = client.post(
            URL,
            json={"references": references(), **SHEET, "timeout_ms": 20_000},
            headers={"Accept": "image/png"},
        )
        as_json = client.post(  # the JSON answer renders 64 glyphs: 256 rows, 12.8 s
            URL, json={"references": references(), **SHEET, "timeout_ms": 20_000}
        )
    assert answer.status_code == 429
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "26"
    assert "rendering this answer" in answer.json()["detail"]
    assert as_json.status_code == 200
    # both encoded; only the JSON answer's generate job was sent
    assert sorted(job["op"] for job in all_jobs(served)) == ["encode", "encode", "generate"]
