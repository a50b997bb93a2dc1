"""The consumer group on a real Redis: dead consumers found by their heartbeat key, their
entries moved to one live consumer only, and removed from the group once they hold none."""

from __future__ import annotations

from redis import Redis

from app.queue import keys
from app.queue.consumers import ConsumerGroup
from app.redis_conn import sync_client
from app.settings import Settings

STREAM = keys.stream("m", 1)


def pending_of(redis: Redis, stream: str = STREAM) -> dict[str, int]:
    """consumer -> its pending entries, as XINFO CONSUMERS lists the group's members."""
    return {c["name"].decode(): c["pending"] for c in redis.xinfo_consumers(stream, keys.GROUP)}


def delivered_to(redis: Redis, consumer: str, entries: int) -> list[bytes]:
    """Add `entries` entries to the stream and deliver them all to `consumer`."""
    redis.xgroup_create(STREAM, keys.GROUP, id="0", mkstream=True)
    for i in range(entries):
        redis.xadd(STREAM, {"job": f"job-{i}"})
    return [eid for eid, _ in redis.xreadgroup(keys.GROUP, consumer, {STREAM: ">"})[0][1]]


def test_only_consumers_without_a_heartbeat_are_dead(settings: Settings) -> None:
    redis = sync_client(settings.redis_url)
    delivered_to(redis, "ghost", 1)
    redis.xreadgroup(keys.GROUP, "beating", {STREAM: "0"})  # joins the group
    redis.set(keys.worker("beating"), "1", ex=60)
    assert ConsumerGroup(redis).dead(STREAM, "me") == ["ghost"]
    assert ConsumerGroup(redis).dead(keys.stream("none", 1), "me") == []  # no stream yet


def test_a_dead_consumers_entries_move_to_one_live_consumer_only(settings: Settings) -> None:
    redis = sync_client(settings.redis_url)
    ids = delivered_to(redis, "ghost", 3)
    first = ConsumerGroup(redis).claim(STREAM, "live-a", owner="ghost")
    second = ConsumerGroup(redis).claim(STREAM, "live-b", owner="ghost")
    assert [c.entry_id for c in first] == ids
    assert [c.deliveries for c in first] == [1, 1, 1]  # counted before this claim
    assert first[0].fields == {b"job": b"job-0"}
    assert second == []
    assert pending_of(redis) == {"ghost": 0, "live-a": 3}


def test_a_claimed_entry_deleted_while_pending_has_no_fields(settings: Settings) -> None:
    redis = sync_client(settings.redis_url)
    (entry_id,) = delivered_to(redis, "ghost", 1)
    redis.xdel(STREAM, entry_id)
    (claimed,) = ConsumerGroup(redis).claim(STREAM, "live", owner="ghost")
    assert (claimed.entry_id, claimed.fields) == (entry_id, None)


def test_idle_claims_take_only_entries_idle_that_long(settings: Settings) -> None:
    redis = sync_client(settings.redis_url)
    ids = delivered_to(redis, "hung", 2)
    assert ConsumerGroup(redis).claim(STREAM, "live", idle_ms=3_600_000) == []
    assert [c.entry_id for c in ConsumerGroup(redis).claim(STREAM, "live", idle_ms=0)] == ids


def test_a_consumer_is_forgotten_only_once_it_holds_nothing(settings: Settings) -> None:
    redis = sync_client(settings.redis_url)
    ids = delivered_to(redis, "ghost", 2)
    group = ConsumerGroup(redis)
    assert not group.forget(STREAM, "ghost")
    assert pending_of(redis) == {"ghost": 2}
    redis.xack(STREAM, keys.GROUP, *ids)
    assert group.forget(STREAM, "ghost")
    assert pending_of(redis) == {}
    assert not group.forget(STREAM, "ghost")  # another worker's sweep removed it first
