"""Committing requested alias moves: a move is routed only once a worker holds its versions
loaded and warm, or failed when one of them would not load (README: "Moving an alias")."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.queue import keys
from app.registry import aliases
from app.worker.models import ModelSet

log = logging.getLogger("hanmo.worker")


def settle_moves(
    sessions: sessionmaker[Session], model_set: ModelSet, worker_id: str, redis: Any
) -> None:
    """Commit each requested alias move whose versions this worker has loaded and warmed
    (then the api routes to them), or fail it when one of them would not load."""
    try:
        with sessions() as session:
            moves = aliases.pending_moves(session)
    except Exception as exc:  # the registry is down: try again at the next refresh
        log.warning("worker.registry_unavailable error=%s", exc)
        return
    loaded = {m.served.key for m in model_set.models.values()}
    failed = model_set.failed_loads
    settled = False
    for move in moves:
        if model_set.only is not None and move.model not in model_set.only:
            continue
        needed = [f"{move.model}:{v}" for v in move.versions]
        errors = [f"{k}: {failed[k]}" for k in needed if k in failed]
        if not errors and not all(k in loaded for k in needed):
            continue
        error = f"worker {worker_id} could not load " + "; ".join(errors) if errors else ""
        with sessions.begin() as session:
            done = aliases.settle_move(session, move, f"worker:{worker_id}", error)
        if done:
            settled = True
            log.info(
                "worker.alias_%s model=%s alias=%s versions=%s",
                "failed" if error else "moved",
                move.model,
                move.alias,
                needed,
            )
    if settled:
        redis.incr(keys.REGISTRY_GENERATION)
