"""What a service needs from the process it runs in, and the registry transaction it runs
registry functions in (off the event loop, database errors as problems)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import anyio
from redis.asyncio import Redis
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.errors import Conflict, DatabaseUnavailable, HanmoError
from app.queue import keys
from app.queue.errors import REDIS_ERRORS
from app.settings import Settings

T = TypeVar("T")
POLL_S = 0.05


class Backends(Protocol):
    """The stores a service reaches (the api's State is one)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def redis(self) -> Redis: ...


async def transact(
    sessions: sessionmaker[Session], fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """Run a registry function in one transaction, in a thread: a conflicting concurrent
    change is a 409, an unreachable database a 503."""

    def run() -> T:
        with sessions.begin() as session:
            return fn(session, *args, **kwargs)

    try:
        return await anyio.to_thread.run_sync(run)
    except HanmoError:
        raise
    except IntegrityError as exc:
        raise Conflict("a concurrent change conflicted with this one; retry") from exc
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable("the model registry cannot be reached") from exc


async def poll(
    sessions: sessionmaker[Session],
    wait_s: float,
    settled: Callable[[dict[str, Any]], bool],
    view: dict[str, Any],
    read: Callable[..., dict[str, Any]],
    *args: Any,
) -> dict[str, Any]:
    """Re-read `view` until `settled` (a worker finished with it) or `wait_s` has passed."""
    deadline = time.monotonic() + wait_s
    while not settled(view) and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
        view = await transact(sessions, read, *args)
    return view


async def announce_change(redis: Redis) -> None:
    """Tell workers and api replicas that the registry changed (best effort: they also
    poll the registry)."""
    try:
        await redis.incr(keys.REGISTRY_GENERATION)
    except REDIS_ERRORS:
        pass
