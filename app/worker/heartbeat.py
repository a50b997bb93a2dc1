"""A worker's heartbeat: a hash with a TTL, refreshed from a thread so that a long batch
never makes a live worker look dead. It also says since when the worker has been inside one
step that nothing interrupts (`busy_since_s`), which /readyz reads per model."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from redis import exceptions as redis_errors

from app.queue import keys
from app.redis_conn import as_text

if TYPE_CHECKING:
    from app.worker.main import Worker

log = logging.getLogger("hanmo.worker")


class Heartbeat:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.last_error = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self.beat()
        self._thread = threading.Thread(target=self._loop, name="hanmo-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        try:
            self.worker.redis.delete(keys.worker(self.worker.id))
            self.worker.redis.zrem(keys.WORKERS, self.worker.id)
        except (redis_errors.RedisError, OSError):
            pass

    def _loop(self) -> None:
        while not self._stop.wait(self.worker.settings.heartbeat_s):
            try:
                self.beat()
            except (redis_errors.RedisError, OSError) as exc:
                log.warning("worker.heartbeat_failed error=%s", exc)

    def beat(self) -> None:
        w = self.worker
        models = {
            m.served.key: {"provider": m.provider, **m.stats} for m in list(w.models.values())
        }
        ttl_s = w.settings.heartbeat_ttl_s
        with w.redis.pipeline(transaction=False) as pipe:
            pipe.hset(
                keys.worker(w.id),
                mapping={
                    "id": w.id,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "device": w.device,
                    "models": json.dumps(models),
                    "failed_loads": json.dumps(w.failed_loads),
                    "last_error": self.last_error,
                    "beat_s": time.time(),
                    # /readyz: a worker inside one step (a batch, a long job's chunk) for long
                    # takes no interactive work until it ends; between steps it does
                    "busy_since_s": w.busy_since or "",
                    "long_jobs": len(w.lane.jobs),
                },
            )
            pipe.expire(keys.worker(w.id), max(1, int(ttl_s)))
            pipe.zadd(keys.WORKERS, {w.id: time.time()})
            pipe.zremrangebyscore(keys.WORKERS, "-inf", time.time() - 10 * ttl_s)
            pipe.execute()


def loaded_anywhere(redis: Any, heartbeat_ttl_s: float) -> set[str]:
    """The version keys some live worker has loaded, as their heartbeats say."""
    ids = redis.zrangebyscore(keys.WORKERS, time.time() - heartbeat_ttl_s, "+inf")
    with redis.pipeline(transaction=False) as pipe:
        for worker_id in ids:
            pipe.hget(keys.worker(as_text(worker_id)), "models")
        beats = pipe.execute()
    return {key for models in beats if models for key in json.loads(models)}
