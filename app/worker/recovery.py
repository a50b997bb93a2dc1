"""Taking over what dead workers left pending.

A worker whose heartbeat key expired is dead: every `dead_consumer_check_s` each live worker
claims its pending entries at once and, when it holds none, removes it from the group. An
entry idle for `visibility_timeout_ms` is claimed too, whoever holds it: the fallback for a
worker that is hung but still beats. Either way an entry delivered `max_deliveries` times is
failed and dead-lettered, never run again."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.errors import JobFailed
from app.queue import keys
from app.queue.consumers import Claimed, ConsumerGroup
from app.worker.jobs import parse_entry

if TYPE_CHECKING:
    from app.worker.main import Worker

log = logging.getLogger("hanmo.worker")


class Recovery:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.group = ConsumerGroup(worker.redis)

    def sweep_dead(self) -> bool:
        """Claim dead consumers' entries and remove the consumers; True when any was claimed."""
        w = self.worker
        worked = False
        for stream in list(w.models):
            for dead in self.group.dead(stream, w.id):
                claimed = self.group.claim(stream, w.id, owner=dead)
                if claimed:
                    log.warning(
                        "worker.claimed_dead stream=%s from=%s entries=%d",
                        stream,
                        dead,
                        len(claimed),
                    )
                    worked = True
                    self.take(stream, claimed)
                self._forget(stream, dead)
        for dead in self.group.dead(keys.CHECKS, w.id):  # checks are not reclaimed here
            self._forget(keys.CHECKS, dead)
        return worked

    def reclaim_idle(self) -> bool:
        """Claim entries idle past the visibility timeout; True when any was claimed."""
        w = self.worker
        worked = False
        for stream in list(w.models):
            claimed = self.group.claim(stream, w.id, idle_ms=w.settings.visibility_timeout_ms)
            if claimed:
                log.warning("worker.reclaimed stream=%s entries=%d", stream, len(claimed))
                worked = True
                self.take(stream, claimed)
        return worked

    def take(self, stream: str, claimed: list[Claimed]) -> None:
        """Run the claimed entries; dead-letter those delivered too often; ack deleted ones."""
        w = self.worker
        runnable = []
        for entry in claimed:
            if entry.fields is None:  # deleted while pending (a cancelled or expired job)
                w.redis.xack(stream, keys.GROUP, entry.entry_id)
            elif entry.deliveries >= w.settings.max_deliveries:
                self._dead_letter(stream, entry)
            else:
                runnable.append((entry.entry_id, entry.fields))
        if runnable:
            w.handle(stream, runnable)

    def _forget(self, stream: str, consumer: str) -> None:
        if self.group.forget(stream, consumer):
            log.info("worker.forgot_consumer stream=%s consumer=%s", stream, consumer)

    def _dead_letter(self, stream: str, entry: Claimed) -> None:
        assert entry.fields is not None
        job = parse_entry(entry.entry_id, entry.fields)
        log.error("worker.dead_letter job=%s deliveries=%d", job.job_id, entry.deliveries)
        self.worker.redis.xadd(
            keys.DEAD_LETTER,
            {"job": job.job_id, "stream": stream, "deliveries": entry.deliveries},
            maxlen=10_000,
            approximate=True,
        )
        self.worker.fail(
            stream,
            job,
            JobFailed(
                f"the job was delivered {entry.deliveries} times without finishing (its workers"
                " died); it will not be retried"
            ),
        )
