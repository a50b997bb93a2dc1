"""Saved styles in Redis: one hash per style with a TTL (or until DELETE). A style keeps its
normalised reference glyphs, so it can be recomputed by a later version of its model."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from redis.asyncio import Redis

from app.errors import NotFound, RedisUnavailable
from app.queue import keys
from app.queue.client import REDIS_ERRORS

DEFAULT_TTL_S = 30 * 86_400
# the frame of styles saved before records named theirs: every version then was fitted at 0.84
SAVED_BEFORE_FRAME_EM_RATIO = 0.84


class StyleNotFound(NotFound):
    title, slug = "Style not found", "style-not-found"


@dataclass
class StyleRecord:
    style_id: str
    model: str
    version: int
    sha256: str
    style: np.ndarray  # [D] float32
    refs: np.ndarray  # [K, H, W] uint8 (normalised ink)
    em_ratio: float  # the frame refs are fitted in (the card's of the version that saved it)
    chars: str
    confidence: float
    created_ms: int
    expires_ms: int
    owner: str = ""  # the API key id that saved it, when keys are required

    def public(self) -> dict[str, object]:
        return {
            "style_id": self.style_id,
            "model": self.model,
            "version": self.version,
            "sha256": self.sha256,
            "references": len(self.chars),
            "chars": self.chars,
            "confidence": round(self.confidence, 4),
            "created_ms": self.created_ms,
            "expires_ms": self.expires_ms,
            "href": f"/v1/styles/{self.style_id}",
        }

    def ref_glyphs(self) -> np.ndarray:
        return self.refs.astype(np.float32) / 255.0


def new_id() -> str:
    return "st_" + secrets.token_hex(12)


async def save(redis: Redis, record: StyleRecord, ttl_s: int) -> None:
    k, h, w = record.refs.shape
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                keys.style(record.style_id),
                mapping={
                    "model": record.model,
                    "version": record.version,
                    "sha256": record.sha256,
                    "style": record.style.astype(np.float32).tobytes(),
                    "refs": record.refs.astype(np.uint8).tobytes(),
                    "shape": f"{k},{h},{w}",
                    "em_ratio": record.em_ratio,
                    "chars": record.chars,
                    "confidence": record.confidence,
                    "created_ms": record.created_ms,
                    "expires_ms": record.expires_ms,
                    "owner": record.owner,
                },
            )
            pipe.expire(keys.style(record.style_id), ttl_s)
            await pipe.execute()
    except REDIS_ERRORS as exc:
        raise RedisUnavailable("the style store cannot be reached; retry shortly") from exc


async def load(
    redis: Redis, style_id: str, visible: Callable[[str], bool] | None = None
) -> StyleRecord:
    """A saved style; StyleNotFound when unknown, expired, or not `visible` to the caller."""
    try:
        fields: dict[bytes, bytes] = await redis.hgetall(keys.style(style_id))  # type: ignore[assignment]
    except REDIS_ERRORS as exc:
        raise RedisUnavailable("the style store cannot be reached; retry shortly") from exc
    if not fields:
        raise StyleNotFound(f"no style {style_id!r} (unknown, expired or deleted)")
    f = {k.decode(): v for k, v in fields.items()}
    if visible is not None and not visible(f.get("owner", b"").decode()):
        raise StyleNotFound(f"no style {style_id!r} (unknown, expired or deleted)")
    shape = tuple(int(x) for x in f["shape"].decode().split(","))
    return StyleRecord(
        style_id=style_id,
        model=f["model"].decode(),
        version=int(f["version"]),
        sha256=f["sha256"].decode(),
        style=np.frombuffer(f["style"], np.float32).copy(),
        refs=np.frombuffer(f["refs"], np.uint8).reshape(shape).copy(),
        em_ratio=float(f.get("em_ratio", SAVED_BEFORE_FRAME_EM_RATIO)),
        chars=f["chars"].decode(),
        confidence=float(f["confidence"]),
        created_ms=int(f["created_ms"]),
        expires_ms=int(f["expires_ms"]),
        owner=f.get("owner", b"").decode(),
    )


async def replace_code(redis: Redis, record: StyleRecord) -> None:
    """Store a recomputed code (another version's) without touching the TTL."""
    try:
        await redis.hset(
            keys.style(record.style_id),
            mapping={
                "version": record.version,
                "sha256": record.sha256,
                "style": record.style.astype(np.float32).tobytes(),
                "confidence": record.confidence,
            },
        )
    except REDIS_ERRORS as exc:
        raise RedisUnavailable("the style store cannot be reached; retry shortly") from exc


async def delete(redis: Redis, style_id: str) -> None:
    try:
        removed = await redis.delete(keys.style(style_id))
    except REDIS_ERRORS as exc:
        raise RedisUnavailable("the style store cannot be reached; retry shortly") from exc
    if not removed:
        raise StyleNotFound(f"no style {style_id!r} (unknown, expired or deleted)")


def now_ms() -> int:
    return int(time.time() * 1000)
