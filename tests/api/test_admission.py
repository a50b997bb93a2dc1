"""Admission by cost through the api (issue 46, item 3): a worker publishes the rate it runs
a model at, and a request whose work cannot finish by its deadline at that rate is answered
429 with Retry-After at once, before anything is queued."""

from __future__ import annotations

from app.queue import keys
from app.redis_conn import sync_client
from app.settings import Settings
from tests.helpers import live_api, worker_thread

SAMPLE = "/v1/models/tiny-sampler/sample"


def test_measured_rate_turns_away_work_that_would_miss_its_deadline(tiny: Settings) -> None:
    redis = sync_client(tiny.redis_url)
    stream = keys.stream("tiny-sampler", 1)
    with worker_thread(tiny) as worker, live_api(tiny) as client:
        assert client.post(SAMPLE, json={"n": 8, "seed": 1}).status_code == 200
        measured = float(redis.hget(keys.rate(stream), worker.id) or 0)
        assert measured > 0  # rows per busy second, from the batch it ran
        redis.hset(keys.rate(stream), worker.id, "0.5")  # as if the model ran 0.5 rows/s
        refused = client.post(SAMPLE, json={"n": 64, "seed": 2, "timeout_ms": 10_000})
        queued = redis.xlen(stream)
        small = client.post(SAMPLE, json={"n": 3, "seed": 3, "timeout_ms": 10_000})
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("overloaded")
    # 64 rows at 0.5/s is 128 s against the headroom's 0.8 of a 10 s budget (less the ms the
    # api spent before ENQUEUE)
    headroom_s = tiny.admit_headroom * 10
    assert 128 - headroom_s <= int(refused.headers["Retry-After"]) <= 128 - headroom_s + 1
    assert queued == 0
    assert small.status_code == 200  # 6 s of work at that rate fits in 8 s
