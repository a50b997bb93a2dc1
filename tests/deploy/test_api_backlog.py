"""The api's per-model backlog gauges, what KEDA scales the workers on: every version's stream
of a model summed under the model's name alone, so the series survives a promote; left out,
never stale, while Redis is away."""

from __future__ import annotations

from pathlib import Path

from app.queue import keys
from app.queue.consumer import StreamConsumer
from app.redis_conn import sync_client
from app.services.registration import register_directory
from app.settings import Settings
from tests.deploy.test_worker_metrics import samples
from tests.helpers import free_port, live_api, wait_until, worker_thread
from training import tiny_sampler

SAMPLE = "/v1/models/tiny-sampler/sample"
BACKLOG = 'hanmo_queue_backlog{model="tiny-sampler"}'
PENDING = 'hanmo_queue_pending{model="tiny-sampler"}'
ASYNC = {"Prefer": "respond-async"}


def test_backlog_sums_every_version_of_a_model_and_drains(tiny: Settings, tmp_path: Path) -> None:
    # a second version of the same model (other weights, so other bytes), aliased to nothing
    second = register_directory(tiny, tiny_sampler.build(tmp_path / "v2", seed=1), None)
    assert second.version == 2
    with live_api(tiny) as client:
        idle = samples(client.get("/metrics").text)
        for seed in range(3):  # no worker yet: asynchronous jobs wait in the streams
            assert client.post(SAMPLE, json={"seed": seed}, headers=ASYNC).status_code == 202
        for seed in range(2):
            pinned = {"seed": seed, "version": 2}
            assert client.post(SAMPLE, json=pinned, headers=ASYNC).status_code == 202
        queued = samples(client.get("/metrics").text)
        # one entry read by a consumer that never finishes it: pending until reclaimed
        redis = sync_client(tiny.redis_url)
        streams = [keys.stream("tiny-sampler", v) for v in (1, 2)]
        gone = StreamConsumer(redis, "gone-consumer", max_deliveries=3, result_ttl_s=lambda _: 60)
        gone.ensure_group(streams[0])
        assert len(gone.read(streams[:1], 1)[0][1]) == 1
        read = samples(client.get("/metrics").text)
        # the worker claims the entry of the consumer with no heartbeat, runs the jobs of
        # version 1 and, as requests named it, loads version 2 and runs its jobs too
        with worker_thread(tiny):
            wait_until(
                lambda: sum(redis.xlen(s) for s in streams) == 0,
                timeout_s=120,
                awaiting="both versions' streams to drain",
                seen=lambda: [redis.xlen(s) for s in streams],
            )
            drained = samples(client.get("/metrics").text)
        redis.close()
    assert idle[BACKLOG] == 0  # a served model with nothing queued reads 0, not nothing
    assert queued[BACKLOG] == 5  # 3 on version 1 + 2 on version 2
    assert queued[PENDING] == 0
    assert read[BACKLOG] == 5
    assert read[PENDING] == 1
    assert drained[BACKLOG] == 0
    assert drained[PENDING] == 0
    assert not any("version" in key for key in queued if key.startswith("hanmo_queue_backlog"))


def test_backlog_is_left_out_while_redis_is_away(tiny: Settings) -> None:
    away = tiny.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with live_api(away) as client:
        page = client.get("/metrics")
    assert page.status_code == 200
    assert "# TYPE hanmo_queue_backlog gauge" in page.text
    assert not any(key.startswith("hanmo_queue_") for key in samples(page.text))
