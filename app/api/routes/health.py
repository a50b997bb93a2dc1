"""GET /livez, /readyz, /metrics."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.responses import Response

from app.api import exposition
from app.api.deps import StateDep
from app.api.exposition import QueueReading
from app.api.inference import json_response
from app.api.metrics import read_queues
from app.api.problems import problem_response
from app.api.state import State
from app.queue import keys
from app.queue.errors import REDIS_ERRORS
from app.redis_conn import as_text
from app.registry import service
from app.registry.service import ServedVersion

router = APIRouter(tags=["health"])


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: StateDep) -> Response:
    """200 `ready` when the database and Redis answer and every aliased version has a live
    worker. `checks.interactive` says per version whether a live worker holding it can take
    interactive work now (false when none holds it, or each one holding it has been inside
    one step, e.g. a long batch, for over HANMO_INTERACTIVE_BLOCKED_S; a worker running a
    long job in steps serves between them, so it stays true); it does not change the status.
    200 `degraded` while the database is away but the registry cache still routes (inference
    goes on from it, so a load balancer should keep this replica); 503 when it cannot route
    at all (nothing cached), Redis is away, or a routed version has no worker."""
    checks: dict[str, Any] = {"database": await _database_ok(state)}
    checks["redis"], workers = await _live_workers(state)
    served: list[ServedVersion] | None
    if checks["database"]:
        served = await state.registry.call(service.served, False)  # routed, not pending
    else:
        served = await state.registry.cached_versions()
    checks["versions_without_worker"] = [v.key for v in served or () if v.key not in workers]
    checks["interactive"] = {v.key: workers.get(v.key, False) for v in served or ()}
    if served is not None and checks["redis"] and not checks["versions_without_worker"]:
        if checks["database"]:
            return json_response({"status": "ready", "checks": checks})
        detail = f"the registry database is unreachable; serving {len(served)} cached versions"
        return json_response({"status": "degraded", "detail": detail, "checks": checks})
    problem = {
        "type": "https://hanmo.dev/problems/not-ready",
        "title": "Not ready",
        "status": 503,
        "detail": _not_ready_detail(checks, served is None),
        "checks": checks,
    }
    return problem_response(problem, "/readyz")


def _not_ready_detail(checks: dict[str, Any], uncached: bool) -> str:
    parts = [name for name in ("database", "redis") if not checks[name]]
    detail = f"unreachable: {', '.join(parts)}" if parts else ""
    if uncached:
        detail += "; no cached route to serve from"
    if checks["versions_without_worker"]:
        detail += (
            ("; " if detail else "")
            + "no live worker for "
            + ", ".join(checks["versions_without_worker"])
        )
    return detail


async def _database_ok(state: State) -> bool:
    def ping() -> None:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        await anyio.to_thread.run_sync(ping)
    except Exception:  # any failure means not ready
        return False
    return True


async def _live_workers(state: State) -> tuple[bool, dict[str, bool]]:
    """Whether Redis answers, and the version keys that some live worker has loaded, each
    with whether one of those workers can take interactive work now."""
    now = time.time()
    blocked_s = state.settings.interactive_blocked_s
    try:
        ids = await state.redis.zrangebyscore(
            keys.WORKERS, now - state.settings.heartbeat_ttl_s, "+inf"
        )
        loaded: dict[str, bool] = {}
        for worker_id in ids:
            models, busy = await state.redis.hmget(
                keys.worker(as_text(worker_id)), "models", "busy_since_s"
            )
            free = not busy or now - float(busy) < blocked_s
            for key in json.loads(models) if models else ():
                loaded[key] = loaded.get(key, False) or free
    except REDIS_ERRORS:
        return False, {}
    return True, loaded


@router.get("/metrics")
async def metrics(state: StateDep) -> Response:
    """Prometheus exposition: HTTP requests, queue wait, compute, batch sizes, failures,
    calibration, process metrics, and the queue gauges read from Redis now."""
    served: list[ServedVersion] = []
    try:
        served = await state.registry.call(service.served)
    except Exception:  # metrics must render even while the database is away
        pass
    reading = QueueReading(await _streams(state, [(v.model, v.version) for v in served]))
    body = exposition.render(state.metrics.exposition, reading)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def _streams(
    state: State, served: list[tuple[str, int]]
) -> dict[tuple[str, int], tuple[int, int]] | None:
    """(entries, pending) per stream, or None while Redis does not answer."""
    try:
        return (await read_queues(state.redis, served)).streams
    except Exception:  # as above: the page renders, without the queue gauges
        return None
