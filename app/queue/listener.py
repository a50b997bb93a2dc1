"""One pub/sub subscription per api process: jobs finishing wake their waiting requests.

If the subscription drops (Redis restarts), the listener reconnects by itself with backoff;
waiters meanwhile fall back to reading the result key, so a missed message is no lost result."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis

from app.queue.errors import REDIS_ERRORS
from app.queue.results import Outcome, split_message, unpack

log = logging.getLogger("hanmo.queue")


class ReplyListener:
    def __init__(
        self, redis: Redis, channel: str, observe: Callable[[Outcome], None] | None = None
    ) -> None:
        self._redis = redis
        self.channel = channel
        self._observe = observe  # sees every job this process submitted, once, as it finishes
        self._waiters: dict[str, asyncio.Future[Outcome]] = {}
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hanmo-reply-listener")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def expect(self, job_id: str) -> asyncio.Future[Outcome]:
        """A future for the job's outcome. Register it before the job is enqueued (a reply may
        come before the enqueue call returns); it stays registered until `forget`."""
        future = self._waiters.get(job_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiters[job_id] = future
        return future

    def forget(self, job_id: str) -> None:
        self._waiters.pop(job_id, None)

    async def _run(self) -> None:
        backoff_s = 0.05
        while True:
            try:
                await self._listen()
            except REDIS_ERRORS as exc:
                self.connected.clear()
                log.warning("queue.reply_listener_down error=%s retry_s=%.2f", exc, backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 1.0)
            else:
                backoff_s = 0.05

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            self.connected.set()
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] == "message":
                    self._deliver(message["data"])
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]

    def _deliver(self, data: bytes) -> None:
        job_id, blob = split_message(data)
        outcome = unpack(blob)
        if self._observe is not None:
            self._observe(outcome)
        future = self._waiters.get(job_id)
        if future is not None and not future.done():
            future.set_result(outcome)
