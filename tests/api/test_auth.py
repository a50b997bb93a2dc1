"""Keys on the request path (issue 46, "Edges"): a cached key ends at its expiry, and what was
made before keys were required belongs to no key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np

from app.redis_conn import async_client
from app.registry import apikeys
from app.registry.db import make_engine, make_sessionmaker
from app.services import styles as store
from app.settings import Settings
from tests.api.test_admin import new_key
from tests.helpers import live_api, wait_until

SAMPLE = "/v1/models/tiny-sampler/sample"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def short_key(settings: Settings, expires_in_s: int) -> tuple[str, datetime]:
    engine = make_engine(settings.resolved_database_url())
    with make_sessionmaker(engine).begin() as session:
        created = apikeys.create(session, "test", "infer", "short-lived", expires_in_s)
    engine.dispose()
    expires_at = datetime.fromisoformat(created["expires_at"])
    return str(created["key"]), expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)


def test_a_cached_key_is_refused_as_soon_as_it_expires(tiny: Settings) -> None:
    settings = tiny.model_copy(update={"require_api_key": True, "api_key_cache_ttl_s": 60.0})
    with live_api(settings) as http:
        key, expires_at = short_key(settings, 3)
        fresh = http.get("/v1/models", headers=bearer(key))  # verified, then cached
        wait_until(lambda: datetime.now(UTC) > expires_at, timeout_s=10, interval_s=0.01)
        expired = http.get("/v1/models", headers=bearer(key))
    assert fresh.status_code == 200, fresh.text
    assert expired.status_code == 401, expired.text
    assert expired.json()["detail"] == "expired API key"


def ownerless_style(settings: Settings) -> str:
    """A saved style as the api stored it while keys were not required: no owner."""
    record = store.StyleRecord(
        style_id=store.new_id(),
        model="glyph-style",
        version=1,
        sha256="0" * 64,
        style=np.zeros(8, np.float32),
        refs=np.zeros((1, 4, 4), np.uint8),
        em_ratio=0.84,
        chars="永",
        confidence=0.5,
        created_ms=store.now_ms(),
        expires_ms=store.now_ms() + 60_000,
    )

    async def save() -> None:
        redis = async_client(settings.redis_url, 4, 5.0)
        await store.save(redis, record, 60)
        await redis.aclose()

    asyncio.run(save())
    return record.style_id


def test_jobs_and_styles_made_before_keys_were_required_are_admins_only(tiny: Settings) -> None:
    with live_api(tiny) as http:  # keys not required: the job records no owner
        queued = http.post(SAMPLE, json={"seed": 1}, headers={"Prefer": "respond-async"})
    assert queued.status_code == 202, queued.text
    paths = (f"/v1/jobs/{queued.json()['job_id']}", f"/v1/styles/{ownerless_style(tiny)}")
    required = tiny.model_copy(update={"require_api_key": True})
    infer, admin = bearer(new_key(required, "infer")), bearer(new_key(required, "admin"))
    with live_api(required) as http:
        seen = {
            path: (
                http.get(path, headers=infer).status_code,
                http.delete(path, headers=infer).status_code,
                http.get(path, headers=admin).status_code,
            )
            for path in paths
        }
    assert seen == dict.fromkeys(paths, (404, 404, 200))
