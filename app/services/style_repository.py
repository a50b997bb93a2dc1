"""Saved styles in Redis: one hash per style with a TTL (or until DELETE). A style keeps its
normalised reference glyphs, so it can be recomputed by a later version of its model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from redis.asyncio import Redis

from app.errors import RedisUnavailable
from app.queue import keys
from app.queue.errors import REDIS_ERRORS

# the frame of styles saved before records named theirs: every version then was fitted at 0.84
SAVED_BEFORE_FRAME_EM_RATIO = 0.84
AWAY = "the style store cannot be reached; retry shortly"


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


def _code_fields(record: StyleRecord) -> dict[str, object]:
    """The fields a recomputed code changes (another version's)."""
    return {
        "version": record.version,
        "sha256": record.sha256,
        "style": record.style.astype(np.float32).tobytes(),
        "confidence": record.confidence,
    }


def _fields(record: StyleRecord) -> dict[str, object]:
    k, h, w = record.refs.shape
    return {
        "model": record.model,
        **_code_fields(record),
        "refs": record.refs.astype(np.uint8).tobytes(),
        "shape": f"{k},{h},{w}",
        "em_ratio": record.em_ratio,
        "chars": record.chars,
        "created_ms": record.created_ms,
        "expires_ms": record.expires_ms,
        "owner": record.owner,
    }


def _record(style_id: str, f: dict[str, bytes]) -> StyleRecord:
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


async def put(redis: Redis, record: StyleRecord, ttl_s: int) -> None:
    """Store the whole record, expiring in `ttl_s`."""
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.style(record.style_id), mapping=_fields(record))  # type: ignore[arg-type]
            pipe.expire(keys.style(record.style_id), ttl_s)
            await pipe.execute()
    except REDIS_ERRORS as exc:
        raise RedisUnavailable(AWAY) from exc


async def get(redis: Redis, style_id: str) -> StyleRecord | None:
    """The stored record, None when unknown or expired."""
    try:
        fields: dict[bytes, bytes] = await redis.hgetall(keys.style(style_id))  # type: ignore[assignment]
    except REDIS_ERRORS as exc:
        raise RedisUnavailable(AWAY) from exc
    if not fields:
        return None
    return _record(style_id, {k.decode(): v for k, v in fields.items()})


async def put_code(redis: Redis, record: StyleRecord) -> None:
    """Store a recomputed code without touching the TTL."""
    try:
        await redis.hset(keys.style(record.style_id), mapping=_code_fields(record))  # type: ignore[arg-type]
    except REDIS_ERRORS as exc:
        raise RedisUnavailable(AWAY) from exc


async def remove(redis: Redis, style_id: str) -> bool:
    """Delete the record; False when there was none."""
    try:
        return bool(await redis.delete(keys.style(style_id)))
    except REDIS_ERRORS as exc:
        raise RedisUnavailable(AWAY) from exc
