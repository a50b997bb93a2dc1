"""What the lifespan builds once per api process."""

from __future__ import annotations

from dataclasses import dataclass, field

from anyio import CapacityLimiter
from redis.asyncio import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.api.deadlines import RenderPace
from app.api.keycache import KeyCache
from app.api.metrics import Metrics
from app.api.registry_cache import RegistryCache
from app.queue.client import JobQueue
from app.settings import Settings


@dataclass
class State:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: Redis
    queue: JobQueue
    registry: RegistryCache
    metrics: Metrics
    renders: CapacityLimiter  # heavy renders at once (settings.max_heavy_renders)
    keys: KeyCache = field(default_factory=KeyCache)
    # this process's render pace per kind: what a synchronous answer reserves of its deadline
    render_pace: RenderPace = field(default_factory=RenderPace)
