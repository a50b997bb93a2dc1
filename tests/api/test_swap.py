"""Zero-downtime swap, measured: a steady stream of sample requests (over 20 per second for
30 seconds, four clients) while `production` moves from v1 to v2 and back by rollback, through
a live uvicorn api, a real worker, Redis and the database.

Run alone to see the figures: `pytest tests/api/test_swap.py -s`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from hanmo_client import Hanmo

from app.cli import register_directory
from app.settings import Settings
from tests.api.test_admin import new_key
from tests.helpers import live_api, worker_thread
from training import tiny_sampler

DURATION_S = 30.0
CLIENTS = 4
PACE_S = 0.1  # each client: one request, then at most this pause


@dataclass
class Call:
    start: float
    end: float
    status: int
    version: int | None


def test_alias_moves_and_rolls_back_under_load_without_a_failed_request(
    tiny: Settings, tmp_path: Path
) -> None:
    settings = tiny.model_copy(update={"registry_cache_ttl_s": 2.0})
    register_directory(settings, tiny_sampler.build(tmp_path / "v2", seed=1), None)
    key = new_key(settings, "admin")
    calls: list[Call] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(base_url: str, index: int) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as http:
            seed = index * 1_000_000
            while not stop.is_set():
                seed += 1
                start = time.monotonic()
                try:
                    response = http.post(
                        "/v1/models/tiny-sampler/sample", json={"n": 1, "seed": seed}
                    )
                    status = response.status_code
                    version = response.json().get("version") if status == 200 else None
                except httpx.HTTPError:
                    status, version = 0, None
                end = time.monotonic()
                with lock:
                    calls.append(Call(start, end, status, version))
                stop.wait(max(0.0, PACE_S - (end - start)))

    with worker_thread(settings), live_api(settings) as http:
        hanmo = Hanmo(str(http.base_url), api_key=key)
        threads = [
            threading.Thread(target=client, args=(str(http.base_url), i), daemon=True)
            for i in range(CLIENTS)
        ]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(8)
        move_asked = time.monotonic()
        moved = hanmo.admin.set_alias("tiny-sampler", "production", 2)
        move_done = time.monotonic()
        time.sleep(10)
        back_asked = time.monotonic()
        back = hanmo.admin.rollback("tiny-sampler", "production")
        back_done = time.monotonic()
        time.sleep(max(0.0, DURATION_S - (time.monotonic() - began)))
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        history = hanmo.admin.alias_history("tiny-sampler", "production")
    elapsed = time.monotonic() - began
    failed = [c for c in calls if c.status != 200]
    before = [c.version for c in calls if c.end < move_asked]
    during_v2 = [c.version for c in calls if c.start > move_done and c.end < back_asked]
    after = [c.version for c in calls if c.start > back_done]
    rate = len(calls) / elapsed
    print(  # the figures the closing note quotes
        f"\nswap under load: {len(calls)} requests in {elapsed:.1f} s ({rate:.1f}/s), "
        f"{len(failed)} failed; versions seen {sorted({c.version for c in calls})}; "
        f"move v1->v2 took {move_done - move_asked:.2f} s, rollback {back_done - back_asked:.2f} s;"
        f" after the move {len(during_v2)} answers, all v2: {set(during_v2) == {2}}; "
        f"after the rollback {len(after)} answers, all v1: {set(after) == {1}}"
    )
    assert (moved.version, moved.state, back.version, back.state) == (2, "ready", 1, "ready")
    assert rate >= 20, rate
    assert elapsed >= DURATION_S
    assert failed == []
    assert {c.version for c in calls} == {1, 2}
    assert set(before) == {1}
    assert during_v2
    assert set(during_v2) == {2}
    assert after
    assert set(after) == {1}
    assert [e.action for e in history] == [
        "set",
        "move-requested",
        "moved",
        "rollback-requested",
        "moved",
    ]
