"""`hanmo api --workers 2` (issue 47, item 1) with two worker processes: two api processes on
one port, each with its own reply listener; answers reach whichever process waits, from
whichever worker ran the job, and one Idempotency-Key is one job whichever process takes each
request."""

from __future__ import annotations

import httpx

from app.queue import keys
from app.redis_conn import sync_client
from app.settings import Settings
from tests.helpers import api_ready, free_port, wait_until
from tests.worker.processes import ApiProcess, descendants, worker_processes

SAMPLE = "/v1/models/tiny-sampler/sample"


def test_two_api_processes_answer_and_share_idempotency(tiny: Settings) -> None:
    settings = tiny.model_copy(update={"port": free_port()})
    base = f"http://127.0.0.1:{settings.port}"
    redis = sync_client(settings.redis_url)
    api = ApiProcess(settings, workers=2)
    try:
        with worker_processes(settings, 2) as workers:
            for worker in workers:
                worker.log.wait_for("worker.loaded version=tiny-sampler:1")
            wait_until(lambda: api_ready(base), timeout_s=120, awaiting="the api to be ready")
            wait_until(  # each process subscribes to its own reply channel as it starts
                lambda: len(redis.pubsub_channels(keys.reply_channel("*"))) >= 2,
                timeout_s=120,
                awaiting="two reply listeners",
            )
            listeners = redis.pubsub_channels(keys.reply_channel("*"))
            processes = [p for p in descendants(api.popen.pid) if "spawn_main" in p.command]
            statuses, job_ids = [], set()
            for seed in range(20):  # a new connection each time: the kernel picks the process
                with httpx.Client(base_url=base, timeout=30) as http:
                    statuses.append(http.post(SAMPLE, json={"seed": seed}).status_code)
                    accepted = http.post(
                        SAMPLE,
                        json={"seed": 1},
                        headers={"Prefer": "respond-async", "Idempotency-Key": "one-order"},
                    )
                    statuses.append(accepted.status_code)
                    job_ids.add(accepted.json()["job_id"])
    finally:
        api.stop()
        redis.close()
    assert len(processes) == 2, processes
    assert len(listeners) == 2, listeners  # one reply channel per api process
    assert statuses == [200, 202] * 20
    assert len(job_ids) == 1
