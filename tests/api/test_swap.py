"""Zero-downtime swap, measured: a steady stream of sample requests (four clients, over 20
per second) while `production` moves from v1 to v2, the worker drains and unloads v1, and the
alias moves back by rollback (so v1 is loaded again under load), through a live uvicorn api, a
real worker, Redis and the database. Each phase lasts until enough answers have come back in
it and the worker has done what the phase waits for: events, not fixed sleeps.

Run alone to see the figures: `pytest tests/api/test_swap.py -s`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from hanmo_client import Hanmo

from app.queue import keys
from app.services.registration import register_directory
from app.settings import Settings
from tests.api.test_admin import new_key
from tests.helpers import live_api, wait_until, worker_thread
from training import tiny_sampler

CLIENTS = 4
PACE_S = 0.1  # each client: one request, then at most this pause
PER_PHASE = 40  # answers each phase waits for (before the move, on v2, after the rollback)


@dataclass
class Call:
    start: float
    end: float
    status: int
    version: int | None


def test_alias_moves_and_rolls_back_under_load_without_a_failed_request(
    tiny: Settings, tmp_path: Path
) -> None:
    # v1 is unloaded 1 s after the move has drained it, so the rollback must load it again
    settings = tiny.model_copy(update={"registry_cache_ttl_s": 2.0, "drain_s": 1.0})
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

    def answered_since(moment: float) -> int:
        with lock:
            return sum(1 for c in calls if c.start > moment)

    with worker_thread(settings) as worker, live_api(settings) as http:
        hanmo = Hanmo(str(http.base_url), api_key=key)
        threads = [
            threading.Thread(target=client, args=(str(http.base_url), i), daemon=True)
            for i in range(CLIENTS)
        ]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        wait_until(lambda: answered_since(began) >= PER_PHASE, 120, awaiting="answers on v1")
        move_asked = time.monotonic()
        moved = hanmo.admin.set_alias("tiny-sampler", "production", 2)
        move_done = time.monotonic()
        wait_until(
            lambda: (
                answered_since(move_done) >= PER_PHASE
                and keys.stream("tiny-sampler", 1) not in worker.models
            ),
            120,
            awaiting="answers on v2 and the worker to unload v1",
            seen=lambda: sorted(worker.models),
        )
        back_asked = time.monotonic()
        back = hanmo.admin.rollback("tiny-sampler", "production")
        back_done = time.monotonic()
        wait_until(lambda: answered_since(back_done) >= PER_PHASE, 120, awaiting="answers on v1")
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
