"""A synchronous request whose client gives up (closes the connection) has its job cancelled
while it is still queued, so no worker spends time on an answer nobody reads (issue 46,
item 2: after a flood, small requests waited 35 s behind jobs whose clients had gone)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from app.queue import keys
from app.redis_conn import sync_client
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import live_api, slow_sampler, wait_until, worker_thread

SLOW = "/v1/models/slow-sampler/sample"


def jobs_by_seed(redis: object) -> dict[int, tuple[str, str]]:
    """seed -> (job id, status) of every job in Redis."""
    found = {}
    for key in redis.scan_iter(match=keys.job("*")):  # type: ignore[attr-defined]
        fields = redis.hgetall(key)  # type: ignore[attr-defined]
        if b"meta" in fields:
            seed = json.loads(fields[b"meta"])["seed"]
            found[seed] = (key.decode().rpartition(":")[2], fields[b"status"].decode())
    return found


def test_a_request_whose_client_left_is_cancelled_before_it_runs(
    settings: Settings, tmp_path: Path
) -> None:
    register_directory(settings, slow_sampler(tmp_path / "slow"), "production")
    redis = sync_client(settings.redis_url)
    with worker_thread(settings), live_api(settings) as client:
        base = str(client.base_url)
        busy = client.post(
            SLOW, json={"n": 512, "seed": 1}, headers={"Prefer": "respond-async"}
        ).json()["job_id"]  # the one worker is busy with this for a while
        wait_until(
            lambda: jobs_by_seed(redis).get(1, ("", ""))[1] == "running",
            60,
            awaiting="the worker to start the long job",
        )
        with httpx.Client(base_url=base, timeout=httpx.Timeout(30, read=0.5)) as impatient:
            with pytest.raises(httpx.ReadTimeout):
                impatient.post(SLOW, json={"n": 1, "seed": 2})
        wait_until(
            lambda: jobs_by_seed(redis).get(2, ("", ""))[1] == "cancelled",
            30,
            awaiting="the abandoned job to be cancelled",
            seen=lambda: jobs_by_seed(redis).get(2),
        )
        wait_until(
            lambda: jobs_by_seed(redis)[1][1] == "done", 120, awaiting="the long job to finish"
        )
        stayed = jobs_by_seed(redis)[2]
        answered = client.get(f"/v1/jobs/{busy}").json()["status"]
    assert stayed[1] == "cancelled"  # the worker skipped it: never running, never done
    assert answered == "done"
