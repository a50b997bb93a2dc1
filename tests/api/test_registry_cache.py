"""The api's registry cache on a real database: concurrent misses share one lookup."""

from __future__ import annotations

import asyncio

from sqlalchemy import event

from app.api.registry_cache import RegistryCache
from app.registry.db import make_engine, make_sessionmaker
from app.settings import Settings


def test_concurrent_misses_share_one_lookup(tiny: Settings) -> None:
    engine = make_engine(tiny.resolved_database_url())
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    cache = RegistryCache(make_sessionmaker(engine), ttl_s=60)

    async def together(n: int) -> list[object]:
        return list(
            await asyncio.gather(*(cache.route("tiny-sampler", None, None) for _ in range(n)))
        )

    alone = asyncio.run(together(1))
    one_lookup = len(statements)
    cache.invalidate()
    statements.clear()
    fifty = asyncio.run(together(50))
    engine.dispose()
    assert one_lookup > 0
    assert len(statements) == one_lookup  # 50 requests that missed together: one lookup
    assert {r.main.version for r in fifty} == {alone[0].main.version}  # type: ignore[attr-defined]
