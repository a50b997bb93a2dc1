"""Redis behind Sentinel: `redis+sentinel://` URLs and the clients that follow the master.

    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]
                     [?sentinel_password=P&sentinel_username=U]

The hosts are the sentinels (port 26379 when left out), `service` the name they monitor
(`sentinel monitor <service> ...`), `db` the database (0). The userinfo part is for the master
and its replicas, as in a `redis://` URL; the sentinels' own credentials (`requirepass` in
sentinel.conf) go in the query. Percent-encode reserved characters in any of them.

The clients ask the sentinels for the master's address whenever they open a connection, so
after a failover every new connection goes to the new master; a connection still open on a
demoted master answers READONLY (or UNBLOCKED for a blocked read), which redis-py turns into a
ConnectionError after dropping the connection. Callers retry ConnectionError (app/queue/errors.py
REDIS_ERRORS), so nothing needs a restart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_PORT = 26379
QUERY_OPTIONS = ("sentinel_username", "sentinel_password")
# The master's connections: as app/redis_conn.py opens a plain Redis.
MASTER_OPTIONS: dict[str, Any] = {
    "socket_timeout": 10,
    "socket_connect_timeout": 2,
    "health_check_interval": 5,
}
# A sentinel that does not answer within this is skipped for the next one.
SENTINEL_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class SentinelUrl:
    sentinels: list[tuple[str, int]]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    def sentinel_options(self) -> dict[str, Any]:
        return {
            "socket_timeout": SENTINEL_TIMEOUT_S,
            "socket_connect_timeout": SENTINEL_TIMEOUT_S,
            "username": self.sentinel_username,
            "password": self.sentinel_password,
        }

    def master_options(self) -> dict[str, Any]:
        return {
            **MASTER_OPTIONS,
            "db": self.db,
            "username": self.username,
            "password": self.password,
        }


def parse_sentinel_url(url: str) -> SentinelUrl:
    """The parts of a `redis+sentinel://` URL (grammar in the module's docstring); ValueError
    names what is wrong, so a bad HANMO_REDIS_URL stops the process as it starts."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ValueError(f"not a {SENTINEL_SCHEME}:// URL: {parts.scheme}://")
    auth, _, hosts = parts.netloc.rpartition("@")
    user, _, password = auth.partition(":")
    sentinels = [_host_port(node) for node in hosts.split(",")]
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not 1 <= len(path) <= 2:
        raise ValueError(f"a sentinel URL ends in /service or /service/db, not {parts.path!r}")
    if len(path) == 2 and not path[1].isdigit():
        raise ValueError(f"the database is a number, not {path[1]!r}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(QUERY_OPTIONS))
    if unknown:
        raise ValueError(f"unknown sentinel URL options {unknown}; known: {list(QUERY_OPTIONS)}")
    return SentinelUrl(
        sentinels,
        path[0],
        int(path[1]) if len(path) == 2 else 0,
        unquote(user) or None,
        unquote(password) or None,
        query.get("sentinel_username", [""])[-1] or None,
        query.get("sentinel_password", [""])[-1] or None,
    )


def _host_port(node: str) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]` or `[v6]:port`."""
    host, port = node, ""
    if node.startswith("["):
        host, _, rest = node[1:].partition("]")
        port = rest.removeprefix(":")
    elif ":" in node:
        host, _, port = node.rpartition(":")
    if not host or not (port.isdigit() or port == ""):
        raise ValueError(f"a sentinel is host[:port], not {node!r}")
    return host, int(port) if port else DEFAULT_PORT


def sentinel_sync(url: str) -> redis.Redis:
    """A client of the service's master; its pool rediscovers the master on every connect."""
    spec = parse_sentinel_url(url)
    sentinel = redis.sentinel.Sentinel(spec.sentinels, sentinel_kwargs=spec.sentinel_options())
    client: redis.Redis = sentinel.master_for(spec.service, **spec.master_options())
    return client


class BlockingSentinelPool(aiosentinel.SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """SentinelConnectionPool's master discovery with BlockingConnectionPool's wait for a free
    connection (the MRO puts the sentinel pool's overrides first; it overrides neither
    get_connection nor release, so the blocking ones apply)."""


def sentinel_async(
    url: str, max_connections: int = 256, pool_timeout_s: float = 10.0
) -> aioredis.Redis:
    """The asyncio client of the service's master, on a blocking pool as app/redis_conn.py's
    async_client: past `max_connections` in flight a command waits up to `pool_timeout_s`."""
    spec = parse_sentinel_url(url)
    sentinel = aiosentinel.Sentinel(spec.sentinels, sentinel_kwargs=spec.sentinel_options())
    client: aioredis.Redis = sentinel.master_for(
        spec.service,
        connection_pool_class=BlockingSentinelPool,
        max_connections=max_connections,
        timeout=pool_timeout_s,
        **spec.master_options(),
    )
    return client
