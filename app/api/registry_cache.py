"""The api's view of the registry: resolutions cached for a short TTL, served stale while the
database is unreachable, so inference keeps going through a database outage."""

from __future__ import annotations

import time
from typing import Any

import anyio
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.errors import DatabaseUnavailable
from app.registry import service
from app.registry.service import ServedVersion

Key = tuple[str, str | None, int | None]


class RegistryCache:
    def __init__(self, sessions: sessionmaker[Session], ttl_s: float) -> None:
        self.sessions = sessions
        self.ttl_s = ttl_s
        self._entries: dict[Key, tuple[float, ServedVersion]] = {}

    async def resolve(self, name: str, alias: str | None, version: int | None) -> ServedVersion:
        key = (name, None if version is not None else (alias or "production"), version)
        hit = self._entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1]
        try:
            served = await anyio.to_thread.run_sync(self._resolve, name, key[1], version)
        except (OperationalError, SQLAlchemyError) as exc:
            if hit is not None:
                return hit[1]  # stale beats down
            raise DatabaseUnavailable("the model registry cannot be reached") from exc
        self._entries[key] = (time.monotonic(), served)
        return served

    def _resolve(self, name: str, alias: str | None, version: int | None) -> ServedVersion:
        with self.sessions() as session:
            return service.resolve(session, name, alias, version)

    async def call(self, fn: Any, *args: Any) -> Any:
        """Run a read-only registry function in a thread with its own session."""

        def run() -> Any:
            with self.sessions() as session:
                return fn(session, *args)

        try:
            return await anyio.to_thread.run_sync(run)
        except (OperationalError, SQLAlchemyError) as exc:
            raise DatabaseUnavailable("the model registry cannot be reached") from exc
