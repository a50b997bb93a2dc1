"""Redis Cluster (issue 47, item 3): the api and workers on a three-master cluster, through
the same tests that run on a single Redis (imported here, so they run twice: there on the
session's Redis, here on the cluster of tests/cluster/conftest.py): sampling, async jobs,
idempotency, cancel, dead-letter and a worker SIGKILL with none lost; predict and style run
beside this module, each with its own `served` fixture. And the cluster's own guarantees:
one version's keys share a slot, the versions spread over the masters, replies cross them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError
from redis.cluster import RedisCluster

from app.queue import keys
from app.queue.listener import ReplyListener
from app.queue.results import Outcome, pack_failed
from app.redis_conn import async_client, sync_client
from app.settings import Settings
from tests.api.test_jobs import (
    test_cancel_before_it_runs,
    test_idempotency_key_maps_to_one_job,
    test_respond_async_gives_202_and_a_job_to_poll,
)
from tests.api.test_sampling import (
    test_sample_batched_with_concurrent_requests_is_identical,
    test_sample_same_seed_is_byte_identical,
)
from tests.queue.test_consumer import STREAM, enqueue
from tests.worker.test_recovery import (
    test_job_delivered_too_often_is_dead_lettered,
    test_worker_killed_mid_batch_loses_no_job,
)


def test_the_clients_are_cluster_clients(settings: Settings) -> None:
    client: Any = sync_client(settings.redis_url)
    assert isinstance(client, RedisCluster)
    assert len(client.get_primaries()) == 3


def test_one_versions_keys_share_a_slot_and_versions_spread(settings: Settings) -> None:
    client: Any = sync_client(settings.redis_url)
    slots = set()
    for version in range(1, 9):
        stream = keys.stream("m", version)
        job_id = keys.new_job_id(stream)
        together = {
            client.keyslot(key)
            for key in (
                stream,
                keys.backlog(stream),
                keys.rate(stream),
                keys.idempotency(stream, "k"),
                keys.job(job_id),
                keys.result(job_id),
                keys.rendered(job_id, "image/png"),
                keys.steps(job_id),
            )
        }
        assert len(together) == 1, f"version {version}'s keys span slots {together}"
        slots |= together
    nodes = {client.get_node_from_key(keys.stream("m", v)).name for v in range(1, 9)}
    assert len(slots) == 8
    assert len(nodes) > 1  # eight versions on one master of three would be a broken tag


def test_replies_reach_the_api_by_pub_sub_on_the_cluster(settings: Settings) -> None:
    """A reply published on any master reaches the listener (classic pub/sub is broadcast
    to every node): the wake-up, not the api's fallback read of the result key."""

    async def scenario() -> list[Outcome]:
        redis = async_client(settings.redis_url)
        listener = ReplyListener(redis, keys.reply_channel("cluster-test"))
        listener.start()
        heard = []
        try:
            await asyncio.wait_for(listener.connected.wait(), 30)
            publisher: Any = sync_client(settings.redis_url)
            for node in publisher.get_primaries():  # published on each master in turn
                future = listener.expect(node.name)
                blob = pack_failed({"status": 409, "node": node.name})
                message = node.name.encode() + b"\n" + blob
                publisher.publish(keys.reply_channel("cluster-test"), message, target_nodes=node)
                heard.append(await asyncio.wait_for(future, 30))  # no result key to read
        finally:
            await listener.stop()
            await redis.aclose()
        return heard

    heard = asyncio.run(scenario())
    assert len(heard) == 3
    assert all(o.problem is not None and o.problem["status"] == 409 for o in heard)


def test_replica_acks_are_refused_on_a_cluster(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="not supported on a Redis Cluster"):
        Settings(redis_url=settings.redis_url, redis_min_replica_acks=1)


def test_an_enqueue_lists_its_stream_on_the_cluster(settings: Settings) -> None:
    """The set of streams lives in another slot than the script's keys: the api lists the
    stream after the script (on one server the script does it)."""
    job_id = enqueue(settings)  # tests/queue/test_consumer.py's, as the api enqueues
    client: Any = sync_client(settings.redis_url)
    assert client.sismember(keys.STREAMS, STREAM)
    assert client.hget(keys.job(job_id), "status") == b"queued"
