"""Rendering a finished job stays off the api's event loop and is done once: a style sheet of
256 characters at 512 px held /livez 15-17 s when it was drawn inline (issue 46), and a
finished job's sheet was redrawn on every GET. Shipped glyph-style model, real worker thread,
real Redis, real HTTP."""

from __future__ import annotations

import threading

import httpx
import redis

from app.queue import keys
from app.settings import Settings
from tests.api.test_style_transfer import URL, references, served
from tests.helpers import live_api, wait_until, worker_thread

__all__ = ["served"]  # the fixture, shared with the style-transfer tests
PNG = {"Accept": "image/png"}
ASYNC = {"Prefer": "respond-async"}
# Answers /livez must give while a sheet is drawn. Drawn inline, only those answered in the
# moments before drawing began come back first (0-3 seen); off the loop, hundreds do.
LIVEZ_WHILE_DRAWING = 10


def finished_job(client: httpx.Client, body: dict[str, object]) -> str:
    """Submit a style request as an async job and wait for it to finish; its id."""
    accepted = client.post(URL, json=body, headers=ASYNC)
    assert accepted.status_code == 202, accepted.text
    job_id: str = accepted.json()["job_id"]

    def done() -> bool:
        status = client.get(f"/v1/jobs/{job_id}").json()["status"]
        assert status != "failed"
        return bool(status == "done")

    wait_until(done, timeout_s=120, awaiting=f"job {job_id} to finish")
    return job_id


def render_cache(client: httpx.Client, result: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'hanmo_render_cache_total{{result="{result}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_livez_answers_while_a_big_sheet_is_drawn(served: Settings) -> None:
    body = {"references": references(1), "text": "永" * 256, "size": 512}
    answers: list[str] = []  # in the order they arrived
    sent = threading.Event()
    with worker_thread(served), live_api(served) as client:
        job_id = finished_job(client, body)  # drawing its sheet is all that is left

        def fetch_sheet() -> None:
            hooks = {"request": [lambda _: sent.set()]}
            with httpx.Client(base_url=client.base_url, timeout=300, event_hooks=hooks) as heavy:
                response = heavy.get(f"/v1/jobs/{job_id}", headers=PNG)
            answers.append(f"sheet {response.status_code}")

        thread = threading.Thread(target=fetch_sheet, daemon=True)
        thread.start()
        assert sent.wait(timeout=60), "the sheet request was not sent"
        while thread.is_alive():
            assert client.get("/livez").status_code == 200
            answers.append("livez")
        thread.join(timeout=300)
    sheet = [a for a in answers if a.startswith("sheet")]
    assert sheet == ["sheet 200"], answers
    assert answers.index(sheet[0]) >= LIVEZ_WHILE_DRAWING, answers


def test_a_finished_sheet_is_drawn_once_and_served_byte_identical(served: Settings) -> None:
    body = {"references": references(1), "text": "永和\n书法" * 8, "size": 256}
    store = redis.Redis.from_url(served.resolved_redis_url())
    with worker_thread(served), live_api(served) as client:
        job_id = finished_job(client, body)
        first = client.get(f"/v1/jobs/{job_id}", headers=PNG)
        stored = store.get(keys.rendered(job_id, "image/png"))
        hits = render_cache(client, "hit")
        second = client.get(f"/v1/jobs/{job_id}", headers=PNG)
        fresh = client.post(URL, json=body, headers=PNG)
        assert render_cache(client, "hit") == hits + 1
        assert render_cache(client, "miss") == 1
        ttl_ms = store.pttl(keys.rendered(job_id, "image/png"))
    assert first.status_code == second.status_code == fresh.status_code == 200
    assert first.headers["content-type"] == second.headers["content-type"] == "image/png"
    assert first.content == second.content == stored == fresh.content
    assert second.headers["X-Hanmo-Job"] == job_id
    assert 0 < ttl_ms <= served.result_ttl_s * 1000  # kept as long as the result, no longer
