"""Saved styles: a style a client saved to write with again, visible to the key that saved it
(when keys are required), kept for its TTL or until deleted. Stored by
app.services.style_repository."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from redis.asyncio import Redis

from app.errors import NotFound
from app.queue.clock import now_ms
from app.services import style_repository as repository
from app.services.style_repository import StyleRecord

__all__ = [
    "DEFAULT_TTL_S",
    "StyleNotFound",
    "StyleRecord",
    "delete",
    "load",
    "new_id",
    "now_ms",
    "replace_code",
    "save",
]

DEFAULT_TTL_S = 30 * 86_400


class StyleNotFound(NotFound):
    title, slug = "Style not found", "style-not-found"


def new_id() -> str:
    return "st_" + secrets.token_hex(12)


async def save(redis: Redis, record: StyleRecord, ttl_s: int) -> None:
    await repository.put(redis, record, ttl_s)


async def load(
    redis: Redis, style_id: str, visible: Callable[[str], bool] | None = None
) -> StyleRecord:
    """A saved style; StyleNotFound when unknown, expired, or not `visible` to the caller."""
    record = await repository.get(redis, style_id)
    if record is None or (visible is not None and not visible(record.owner)):
        raise StyleNotFound(f"no style {style_id!r} (unknown, expired or deleted)")
    return record


async def replace_code(redis: Redis, record: StyleRecord) -> None:
    """Store a recomputed code (another version's) without touching the TTL."""
    await repository.put_code(redis, record)


async def delete(redis: Redis, style_id: str) -> None:
    if not await repository.remove(redis, style_id):
        raise StyleNotFound(f"no style {style_id!r} (unknown, expired or deleted)")
