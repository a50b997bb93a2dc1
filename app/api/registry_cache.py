"""The api's view of the registry: alias routes cached for a short TTL, served stale while the
database is unreachable, so inference keeps going through a database outage. Every registry
change bumps a generation counter in Redis; a changed generation empties the cache at once,
so an alias move is routed within `GENERATION_CHECK_S` rather than a whole TTL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio
from hanmo_client.schemas import DEFAULT_ALIAS
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.errors import DatabaseUnavailable, VersionNotServed
from app.queue import keys
from app.queue.errors import REDIS_ERRORS
from app.registry import service
from app.registry.service import Route, ServedVersion

Key = tuple[str, str | None, int | None]
GENERATION_CHECK_S = 0.25


class RegistryCache:
    def __init__(self, sessions: sessionmaker[Session], ttl_s: float, redis: Any = None) -> None:
        self.sessions = sessions
        self.ttl_s = ttl_s
        self.redis = redis
        self._entries: dict[Key, tuple[float, Route]] = {}
        self._generation: bytes | None = None
        self._inflight: dict[Key, asyncio.Future[Route]] = {}
        self._checked = 0.0

    async def resolve(
        self,
        name: str,
        alias: str | None,
        version: int | None,
        key: str | None = None,
        *,
        want: bool = True,
    ) -> ServedVersion:
        """The version that serves this request: pinned, or the alias's route picked by key.
        A pinned version no alias holds is recorded as wanted (unless `want` is False: no job
        will run), so that workers load it; one no worker could load answers 503 at once."""
        route = await self.route(name, alias, version)
        if want and route.unaliased:
            await self._want(route.main)
        return route.pick(key)

    async def _want(self, served: ServedVersion) -> None:
        """Record that a request named `served` (keys.WANTED, read by app/worker/pinned.py)."""
        if self.redis is None:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zadd(keys.WANTED, {served.key: time.time()})
                pipe.get(keys.unservable(served.key))
                _, unservable = await pipe.execute()
        except REDIS_ERRORS:
            return  # the enqueue that follows answers 503 for Redis
        if unservable is not None:
            raise VersionNotServed(unservable.decode())

    async def route(self, name: str, alias: str | None, version: int | None) -> Route:
        await self._check_generation()
        key = (name, None if version is not None else (alias or DEFAULT_ALIAS), version)
        hit = self._entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1]
        try:
            found = await self._lookup(key)
        except (OperationalError, SQLAlchemyError) as exc:
            if hit is not None:
                return hit[1]  # stale beats down
            raise DatabaseUnavailable("the model registry cannot be reached") from exc
        self._entries[key] = (time.monotonic(), found)
        return found

    async def _lookup(self, key: Key) -> Route:
        """One database lookup per key at a time: requests that miss together (every TTL, at
        high concurrency) share it instead of each taking a thread and a connection. Without
        this, 64 concurrent misses every 2 s were the api's p99 (found by bench/peer.py)."""
        pending = self._inflight.get(key)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this request itself was cancelled
                return await self._lookup(key)  # the leading request was: look up anew
        future: asyncio.Future[Route] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            found = await anyio.to_thread.run_sync(self._route, key[0], key[1], key[2])
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: waiters re-raise it, none is left unread
            raise
        except BaseException:  # cancelled (its client went away): waiters look up anew
            future.cancel()
            raise
        else:
            future.set_result(found)
            return found
        finally:
            del self._inflight[key]

    def invalidate(self) -> None:
        self._entries.clear()

    async def cached_versions(self) -> list[ServedVersion] | None:
        """The versions the cached routes send requests to (what this process can still serve
        while the database is away), once a registry change seen in Redis has emptied what
        it made stale; None when nothing is cached."""
        await self._check_generation()
        routes = [route for _, route in self._entries.values()]
        versions = {v.key: v for r in routes for v in (r.main, r.canary) if v is not None}
        return list(versions.values()) or None

    async def _check_generation(self) -> None:
        if self.redis is None or not self._entries:
            return
        now = time.monotonic()
        if now - self._checked < GENERATION_CHECK_S:
            return
        self._checked = now
        try:
            generation = await self.redis.get(keys.REGISTRY_GENERATION)
        except REDIS_ERRORS:
            return
        if generation != self._generation:
            self._generation = generation
            self._entries.clear()

    def _route(self, name: str, alias: str | None, version: int | None) -> Route:
        with self.sessions() as session:
            return service.route(session, name, alias, version)

    async def call(self, fn: Any, *args: Any) -> Any:
        """Run a read-only registry function in a thread with its own session."""

        def run() -> Any:
            with self.sessions() as session:
                return fn(session, *args)

        try:
            return await anyio.to_thread.run_sync(run)
        except (OperationalError, SQLAlchemyError) as exc:
            raise DatabaseUnavailable("the model registry cannot be reached") from exc
