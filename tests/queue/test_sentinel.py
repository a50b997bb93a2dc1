"""Redis Sentinel (issue 47, item 2): a master, a replica and three sentinels on loopback, a
`hanmo api` and a `hanmo worker` process on a `redis+sentinel://` URL. The master is SIGKILLed
while 200 async jobs and a stream of synchronous requests flow: the sentinels promote the
replica, the api and the worker go on without a restart, and every job answered 202 ends done,
answered once; what the asynchronous replication window lost is counted. With
HANMO_REDIS_MIN_REPLICA_ACKS=1 (WAIT before the 202) nothing may be lost.

Nothing is mocked: real redis-server processes (`--sentinel` for the sentinels). Waits are on
events (sentinel state, replication links, job states); time limits are safety nets only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
import redis.sentinel

from app.queue import keys
from app.queue.results import split_message
from app.redis_sentinel import parse_sentinel_url
from app.settings import Settings
from tests.helpers import api_ready, free_port, wait_for_progress, wait_until
from tests.worker.processes import ApiProcess, Proc, WorkerProcess, descendants

pytestmark = pytest.mark.slow

SERVICE = "mymaster"
SAMPLE = "/v1/models/tiny-sampler/sample"
JOBS = 200
KILL_AFTER = 60  # async jobs accepted before the master is killed
STALL_S = 60.0  # safety net for each wait


class Node:
    """One redis-server process (a data node, or a sentinel with `sentinel=True`)."""

    def __init__(self, directory: Path, port: int, *args: str, sentinel: bool = False) -> None:
        self.directory, self.port = directory, port
        directory.mkdir(parents=True, exist_ok=True)
        self.args = list(args)
        self.sentinel = sentinel
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        common = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        common += ["--logfile", str(self.directory / "redis.log")]
        if self.sentinel:
            conf = self.directory / "sentinel.conf"  # the sentinel rewrites it: its own copy
            conf.write_text("\n".join(self.args) + "\n")
            argv = ["redis-server", str(conf), "--sentinel", *common]
        else:
            argv = ["redis-server", *common, "--save", "", "--appendonly", "no", *self.args]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 20, awaiting=f"redis-server on port {self.port}")

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=2)

    def _answers(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, self.log_tail()
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def log_tail(self) -> str:
        log = self.directory / "redis.log"
        return log.read_text()[-3000:] if log.exists() else ""


@dataclass
class SentinelSet:
    master: Node
    replica: Node
    sentinels: list[Node]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def master_ports(self) -> list[int | None]:
        """The master's port as each sentinel names it (None: that sentinel does not answer)."""
        ports: list[int | None] = []
        for node in self.sentinels:
            try:
                with node.client() as client:
                    _, port = client.execute_command("SENTINEL", "get-master-addr-by-name", SERVICE)
                ports.append(int(port))
            except (redis.RedisError, TypeError):
                ports.append(None)
        return ports

    def ready(self) -> bool:
        """Every sentinel sees the master, the replica and the two other sentinels."""
        for node in self.sentinels:
            with node.client() as client:
                state = client.sentinel_master(SERVICE)
                replicas = client.sentinel_slaves(SERVICE)
            if state["num-other-sentinels"] < 2 or not any(
                r["port"] == self.replica.port and not r["is_sdown"] for r in replicas
            ):
                return False
        return True


@contextmanager
def sentinel_set(directory: Path) -> Iterator[SentinelSet]:
    master = Node(directory / "master", free_port())
    replica = Node(directory / "replica", free_port(), "--replicaof", "127.0.0.1", "0")
    replica.args[-1] = str(master.port)
    sentinels = [
        Node(
            directory / f"sentinel-{i}",
            free_port(),
            f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 2",
            f"sentinel down-after-milliseconds {SERVICE} 1000",
            f"sentinel failover-timeout {SERVICE} 5000",
            f"sentinel parallel-syncs {SERVICE} 1",
            sentinel=True,
        )
        for i in range(3)
    ]
    nodes = [master, replica, *sentinels]
    try:
        for node in nodes:
            node.start()
        found = SentinelSet(master, replica, sentinels)
        wait_until(found.ready, STALL_S, 0.1, awaiting="sentinels to see replica and each other")
        yield found
    finally:
        for node in nodes:
            node.kill()


def replicating_from(node: Node, master_port: int) -> bool:
    """`node` is a replica of `master_port` with its link up (its initial sync done)."""
    try:
        with node.client() as client:
            info = client.info("replication")
    except redis.RedisError:
        return False
    return (
        info.get("role") == "slave"
        and int(info.get("master_port", 0)) == master_port
        and info.get("master_link_status") == "up"
    )


@dataclass
class Traffic:
    """What the clients saw: per async job (by Idempotency-Key) its job id once accepted, and
    every status code by phase: before the kill, failover (until the sentinels agree on the new
    master), rejoin (until the old master is the new one's replica), after."""

    accepted: dict[str, str] = field(default_factory=dict)
    async_codes: Counter[int | str] = field(default_factory=Counter)
    accept_s: list[float] = field(default_factory=list)  # 202 latencies before the kill
    sync: dict[str, Counter[int | str]] = field(
        default_factory=lambda: {p: Counter() for p in ("before", "failover", "rejoin", "after")}
    )
    phase: str = "before"
    stop: threading.Event = field(default_factory=threading.Event)


def submit_async(base: str, traffic: Traffic) -> None:
    """JOBS async jobs, each under its own Idempotency-Key, retried (same key) until a 202."""
    with httpx.Client(base_url=base, timeout=30) as http:
        for i in range(JOBS):
            key = f"job-{i}"
            while key not in traffic.accepted and not traffic.stop.is_set():
                started, phase = time.perf_counter(), traffic.phase
                answer = http.post(
                    SAMPLE,
                    json={"seed": i, "n": 1},
                    headers={"Prefer": "respond-async", "Idempotency-Key": key},
                )
                traffic.async_codes[_code(answer)] += 1
                if answer.status_code == 202:
                    traffic.accepted[key] = answer.json()["job_id"]
                    if phase == traffic.phase == "before":
                        traffic.accept_s.append(time.perf_counter() - started)
                else:
                    time.sleep(0.05)
            time.sleep(0.02)  # spread the jobs over the failover


def send_sync(base: str, traffic: Traffic) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        seed = 0
        while not traffic.stop.is_set():
            seed += 1
            try:
                answer = http.post(SAMPLE, json={"seed": seed, "n": 1, "timeout_ms": 5000})
                traffic.sync[traffic.phase][_code(answer)] += 1  # the phase it ended in
            except httpx.HTTPError as exc:
                traffic.sync[traffic.phase][type(exc).__name__] += 1


def _code(answer: httpx.Response) -> int | str:
    """The status, with the problem's kind for a 503 (e.g. `503 queue-unavailable`)."""
    if answer.status_code != 503:
        return answer.status_code
    return f"503 {answer.json()['type'].rpartition('/')[2]}"


def subscribe_replies(node: Node) -> redis.client.PubSub:
    """Every reply the workers publish, as the replica (the master to be) sees it: a replica
    delivers the PUBLISHes it replicates to its own subscribers, and it is never killed, so
    this counts how often each job was answered in the history that survives."""
    pubsub = node.client().pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe(keys.reply_channel("*"))
    return pubsub


def count_replies(
    pubsub: redis.client.PubSub, answers: Counter[str], stop: threading.Event
) -> None:
    while not stop.is_set():
        message = pubsub.get_message(timeout=0.2)
        if message is not None and message["type"] == "pmessage":
            job_id, _ = split_message(message["data"])
            answers[job_id] += 1
    pubsub.close()


def job_states(base: str, job_ids: list[str]) -> dict[str, str]:
    with httpx.Client(base_url=base, timeout=30) as http:
        states = {}
        for job_id in job_ids:
            answer = http.get(f"/v1/jobs/{job_id}")
            states[job_id] = answer.json()["status"] if answer.status_code == 200 else "lost"
            assert answer.status_code in (200, 404), answer.text
        return states


@pytest.mark.parametrize("replica_acks", [0, 1], ids=["no-wait", "wait-1-replica"])
def test_master_killed_under_load(tiny: Settings, tmp_path: Path, replica_acks: int) -> None:
    with ExitStack() as stack:
        redis_set = stack.enter_context(sentinel_set(tmp_path / "redis"))
        settings = tiny.model_copy(
            update={
                "redis_url": redis_set.url,
                "port": free_port(),
                "redis_min_replica_acks": replica_acks,
                "redis_replica_ack_timeout_ms": 500,
            }
        )
        base = f"http://127.0.0.1:{settings.port}"
        worker = WorkerProcess(settings)
        stack.callback(worker.stop)
        api = ApiProcess(settings, workers=1)
        stack.callback(api.stop)
        worker.log.wait_for("worker.loaded version=tiny-sampler:1")
        wait_until(lambda: api_ready(base), STALL_S, 0.1, awaiting="the api to be ready")
        slot_pids = {p.pid for p in _children(worker.popen.pid)}

        traffic, answers = Traffic(), Counter[str]()
        threads = [
            threading.Thread(target=submit_async, args=(base, traffic)),
            threading.Thread(target=send_sync, args=(base, traffic)),
            threading.Thread(
                target=count_replies,
                args=(subscribe_replies(redis_set.replica), answers, traffic.stop),
            ),
        ]
        for thread in threads:
            thread.start()
            stack.callback(thread.join, STALL_S)
        stack.callback(traffic.stop.set)  # runs first: callbacks run last in, first out

        wait_until(lambda: len(traffic.accepted) >= KILL_AFTER, STALL_S, 0.01, awaiting="jobs")
        old, new = redis_set.master, redis_set.replica
        traffic.phase = "failover"
        old.kill()
        wait_until(
            lambda: redis_set.master_ports() == [new.port] * 3,
            STALL_S,
            0.1,
            awaiting="the sentinels to promote the replica",
            seen=redis_set.master_ports,
        )
        traffic.phase = "rejoin"
        # The old master comes back empty (no persistence) and the sentinels make it the new
        # master's replica: with replica acks on, WAIT has a replica again.
        old.start()
        wait_until(
            lambda: replicating_from(old, new.port),
            STALL_S,
            0.1,
            awaiting="the old master to rejoin as a replica",
        )
        traffic.phase = "after"
        wait_until(
            lambda: len(traffic.accepted) == JOBS and traffic.sync["after"][200] >= 10,
            STALL_S,
            0.05,
            awaiting="all async jobs accepted and sync requests answered after the failover",
            seen=lambda: (len(traffic.accepted), dict(traffic.sync["after"])),
        )
        job_ids = list(traffic.accepted.values())
        states = wait_for_progress(
            "every accepted job to finish or be known lost",
            lambda: job_states(base, job_ids),
            lambda seen: all(s in ("done", "lost", "failed") for s in seen.values()),
            stall_s=STALL_S,
            interval_s=0.3,
        )
        traffic.stop.set()
        for thread in threads:
            thread.join(STALL_S)
        api_alive = api.popen.poll() is None
        slots_after = {p.pid for p in _children(worker.popen.pid)}

    lost = sorted(j for j, s in states.items() if s == "lost")
    twice = {j: n for j, n in answers.items() if n > 1}
    accept_ms = sorted(1000 * s for s in traffic.accept_s)
    report = (
        f"replica_acks={replica_acks}: accepted {len(job_ids)}, done "
        f"{sum(s == 'done' for s in states.values())}, lost {len(lost)}, answered twice "
        f"{len(twice)} ({sum(answers.values())} replies seen on the replica); async codes "
        f"{dict(traffic.async_codes)}; sync "
        f"{ {phase: dict(codes) for phase, codes in traffic.sync.items()} }; 202 before the "
        f"kill p50 {accept_ms[len(accept_ms) // 2]:.1f} ms, max {accept_ms[-1]:.1f} ms"
    )
    print(f"SENTINEL-FAILOVER {report}", file=sys.stderr)
    assert api_alive, "the api process died"
    assert slots_after == slot_pids, "the worker slot was restarted"
    assert not worker.log.matching("worker.died"), report
    assert len(set(job_ids)) == JOBS, report  # one job per Idempotency-Key
    assert set(states.values()) <= {"done", "lost"}, (states, report)
    assert not twice, (twice, report)
    assert sum(answers.values()) >= len(job_ids), report  # the replica relayed the replies
    assert {_status(c) for c in traffic.async_codes} <= {202, 503}, report
    assert {_status(c) for c in set().union(*traffic.sync.values())} <= {200, 503, 504}, report
    if replica_acks:
        assert not lost, report


def _children(pid: int) -> list[Proc]:
    """The worker pool's slot processes."""
    return [p for p in descendants(pid) if "spawn_main" in p.command]


def _status(code: int | str) -> int | str:
    return int(code.split()[0]) if isinstance(code, str) and code[:1].isdigit() else code


def test_sentinel_url_grammar() -> None:
    url = "redis+sentinel://:p%40ss@10.0.0.1,10.0.0.2:26380,[::1]/cache/3?sentinel_password=s"
    spec = parse_sentinel_url(url)
    assert spec.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26379)]
    assert (spec.service, spec.db, spec.password, spec.sentinel_password) == (
        "cache",
        3,
        "p@ss",
        "s",
    )
    assert parse_sentinel_url("redis+sentinel://h/m").db == 0
    for bad, why in (
        ("redis+sentinel://h/", "ends in /service"),
        ("redis+sentinel://h/m/x", "database is a number"),
        ("redis+sentinel://h:p/m", r"host\[:port\]"),
    ):
        with pytest.raises(ValueError, match=why):
            parse_sentinel_url(bad)
    with pytest.raises(ValueError, match="unknown sentinel URL options"):
        parse_sentinel_url("redis+sentinel://h/m?ssl=true")


def test_a_sentinel_url_reaches_the_master_it_names(tmp_path: Path) -> None:
    """The sync and async clients from app/redis_conn.py on a sentinel URL write to the master."""
    import asyncio

    from app.redis_conn import async_client, sync_client

    with sentinel_set(tmp_path) as redis_set:
        client = sync_client(redis_set.url)
        client.set("hanmo:test", "sync")
        pool = client.connection_pool
        assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
        master = pool.get_master_address()  # type: ignore[no-untyped-call]
        assert master == ("127.0.0.1", redis_set.master.port)

        async def write() -> None:
            aclient = async_client(redis_set.url, max_connections=2, pool_timeout_s=1)
            await aclient.set("hanmo:test-async", "async")
            await aclient.aclose()

        asyncio.run(write())
        with redis_set.master.client() as direct:
            assert direct.mget("hanmo:test", "hanmo:test-async") == [b"sync", b"async"]
        client.close()


@pytest.mark.parametrize("command", ["worker", "api"])
def test_a_malformed_redis_url_stops_the_command_at_once(command: str) -> None:
    env = {**os.environ, "HANMO_REDIS_URL": "redis+sentinel://10.0.0.1,10.0.0.2/"}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", command], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 2
    assert b"HANMO_REDIS_URL: a sentinel URL ends in /service" in done.stderr
