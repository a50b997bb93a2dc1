"""create_app(): the FastAPI application and its lifespan."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import Depends, FastAPI
from fastapi.telemetry import TelemetryConfig
from opentelemetry.trace import TracerProvider

from app import __version__, tracing
from app.api import problems
from app.api.access import RequestContext
from app.api.auth import inference_guard
from app.api.limits import BodyLimit
from app.api.metrics import Metrics, RequestMetrics
from app.api.registry_cache import RegistryCache
from app.api.routes import (
    admin,
    feedback,
    health,
    job_events,
    jobs,
    kinds,
    models,
    oip,
    predict,
    reconstruct,
    sampling,
    style,
    style_body,
    web,
)
from app.api.state import State
from app.queue.client import JobQueue
from app.redis_conn import async_client
from app.registry.db import make_engine, make_sessionmaker
from app.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """The api. Redis and the database are reached lazily, so it starts while they are down."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url())
        sessions = make_sessionmaker(engine)
        redis = async_client(
            settings.resolved_redis_url(),
            settings.redis_max_connections,
            settings.redis_pool_timeout_s,
        )
        queue = JobQueue(
            redis,
            secrets.token_hex(8),
            max_depth=settings.max_queue_depth,
            result_ttl_s=settings.result_ttl_s,
            idempotency_ttl_s=settings.idempotency_ttl_s,
            observe=metrics.observe_outcome,
            admit_by_cost=settings.admit_by_cost,
            admit_headroom=settings.admit_headroom,
            heartbeat_ttl_s=settings.heartbeat_ttl_s,
            min_replica_acks=settings.redis_min_replica_acks,
            replica_ack_timeout_ms=settings.redis_replica_ack_timeout_ms,
        )
        queue.listener.start()
        app.state.event_streams = asyncio.Semaphore(settings.max_event_streams)
        app.state.hanmo = State(
            settings,
            engine,
            sessions,
            redis,
            queue,
            RegistryCache(sessions, settings.registry_cache_ttl_s, redis),
            metrics,
            anyio.CapacityLimiter(settings.max_heavy_renders),
        )
        try:
            yield
        finally:
            await queue.listener.stop()
            await redis.aclose()
            engine.dispose()
            tracing.flush()

    app = FastAPI(
        title="hanmo",
        version=__version__,
        lifespan=lifespan,
        telemetry=telemetry(tracing.setup("hanmo-api")),
        docs_url=None,  # served by routes/web.py from installed assets, not a CDN
        redoc_url=None,
        summary="Seeded sampling, posterior-predictive uncertainty and few-shot "
        "Chinese-character style transfer, served.",
    )
    problems.install(app)
    guarded = [Depends(inference_guard)]  # keys (when required) and per-key rate limits
    for router in (
        models.router,
        kinds.router,
        sampling.router,
        predict.router,
        reconstruct.router,
        style.router,
        feedback.router,
        jobs.router,
        job_events.router,
        oip.router,
    ):
        app.include_router(router, dependencies=guarded)
    app.include_router(admin.router)
    app.include_router(health.router)
    app.include_router(oip.health_router)
    app.include_router(web.router)
    app.mount("/ui", web.files(), name="ui")
    app.mount("/docs-assets", web.docs_assets(), name="docs-assets")

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = default_openapi()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(style_body.openapi_schemas())
            components.update(admin.openapi_schemas())
            components.update(kinds.openapi_schemas())
            components.update(oip.openapi_schemas())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(
        BodyLimit,
        max_body_bytes=settings.max_body_bytes,
        overrides={"/admin/": settings.max_upload_bytes},
    )
    app.add_middleware(RequestContext, access_log=settings.access_log)  # outermost: sees all
    return app


def telemetry(provider: TracerProvider | None) -> TelemetryConfig:
    """FastAPI's own OpenTelemetry: its HTTP server span (a client's traceparent honoured) and
    operation spans when hanmo traces (app/tracing.py), nothing otherwise; never its metrics
    (Prometheus has them, app/api/metrics.py) nor its log export (hanmo's lines carry the
    request id, app/logs.py). Off, FastAPI's per-request check is three dict reads."""
    return {
        "tracing": provider is not None,
        "tracer_provider": provider,
        "metrics": False,
        "logs": False,
        "auto_configure": False,
    }
