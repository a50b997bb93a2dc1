"""The worker side of the Redis-streams protocol, beside the producer (app/queue/client.py):
read, admit, finish, reclaim and dead-letter. What to read and how to run it is the worker's.

Delivery is at-least-once. An entry is acked only in the same atomic script that stores its
reply (scripts.FINISH); entries a dead consumer left pending are claimed by a live one as soon
as its heartbeat expires (or, from a hung one, after the visibility timeout); an entry
delivered `max_deliveries` times is failed to the client and dead-lettered."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from redis import Redis
from redis import exceptions as redis_errors
from redis.cluster import RedisCluster

from app.errors import DeadlineExceeded, HanmoError, JobFailed, Overloaded
from app.queue import codec, keys, scripts
from app.queue.clock import now_ms
from app.queue.consumers import Claimed, ConsumerGroup
from app.queue.entries import Entries, Job, parse_entry
from app.queue.pace import Paces
from app.queue.results import pack_failed
from app.queue.status import JobStatus
from app.redis_conn import as_text

log = logging.getLogger("hanmo.queue")
DEAD_LETTER_MAXLEN = 10_000


# A read takes no more of a stream's entries than the worker runs in this long (at the pace it
# measured): a worker reading 128 style jobs at once ran them for 30 s while a one-row sample
# on another stream waited (bench.overload flood: 163 of 301 small requests 504). A worker
# reading one model's stream alone keeps reading by rows (batches of slow jobs stay whole).
READ_SLICE_S = 0.5
PEEK_AGAIN_S = 1.0
# A Redis Cluster serves each stream from its own slot, and one XREADGROUP may name streams of
# one slot only: a worker reading several streams there polls each without blocking, waiting
# between empty rounds from CLUSTER_POLL_S up to CLUSTER_IDLE_S while nothing comes.
CLUSTER_POLL_S = 0.005
CLUSTER_IDLE_S = 0.05


class StreamConsumer:
    """One consumer (a worker) in the workers' group on every job stream."""

    def __init__(
        self,
        redis: Redis,
        consumer_id: str,
        *,
        max_deliveries: int,
        result_ttl_s: Callable[[str], int],
    ) -> None:
        # redis-py types replies as wide unions; the stream replies' shapes are documented
        # by Redis itself, so the client is deliberately untyped here.
        self.redis: Any = redis
        self.id = consumer_id
        self.max_deliveries = max_deliveries
        self.result_ttl_s = result_ttl_s  # stream -> how long its results are kept
        self.group = ConsumerGroup(redis)
        self._start = redis.register_script(scripts.START)
        self._finish = redis.register_script(scripts.FINISH)
        self._drop = redis.register_script(scripts.DROP)
        self.cluster = isinstance(redis, RedisCluster)
        self._idle_s = CLUSTER_POLL_S  # the wait between empty rounds of a cluster's reads
        self._rows_per_job: dict[str, float] = {}  # stream -> recent rows per job
        self.paces = Paces()  # how long its jobs took, per stream and work class
        self._peeked: dict[str, float] = {}  # stream -> when an empty one may be peeked again
        # each job answered with a problem: its stream and error (the worker's metrics)
        self.on_failure: Callable[[str, HanmoError], None] = lambda *_: None

    # -- reading -----------------------------------------------------------------------------

    def ensure_group(self, stream: str) -> None:
        """Create the workers' group on the stream (and the stream) unless it exists."""
        try:
            self.redis.xgroup_create(stream, keys.GROUP, id="0", mkstream=True)
        except redis_errors.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(
        self, streams: Iterable[str], count: int, block_ms: int | None = None
    ) -> list[tuple[str, Entries]]:
        """New entries of the streams, about `count` rows a stream: as many entries as its
        recent jobs' rows fit in `count` (one job of 1,024 rows is read alone, not with 255
        others), at least one; blocks up to `block_ms` when nothing is there."""
        by_count: dict[int, list[str]] = {}
        streams = list(streams)
        shared = len([s for s in streams if s != keys.CHECKS]) > 1  # others wait on this one
        for stream in streams:
            rows = self._rows_per_job.get(stream) or self._peek_rows(stream)
            fit = min(count, int(count // rows))
            seconds = self.paces.seconds_per_job(stream)
            if seconds and shared:  # at most READ_SLICE_S of work: other streams wait no longer
                fit = min(fit, int(READ_SLICE_S / seconds))
            by_count.setdefault(max(1, fit), []).append(stream)
        if len(by_count) == 1:
            ((entries_count, names),) = by_count.items()
            return self._read(names, entries_count, block_ms)
        found = [got for n, names in by_count.items() for got in self._read(names, n, None)]
        if found or not block_ms:
            return found
        return self._read(list(streams), min(by_count), block_ms)

    def _read(
        self, streams: list[str], count: int, block_ms: int | None
    ) -> list[tuple[str, Entries]]:
        if self.cluster and len(streams) > 1:
            return self._poll(streams, count, block_ms)
        reply = self.redis.xreadgroup(
            keys.GROUP, self.id, dict.fromkeys(streams, ">"), count=count, block=block_ms
        )
        return [(as_text(stream), entries) for stream, entries in reply or []]

    def _poll(
        self, streams: list[str], count: int, block_ms: int | None
    ) -> list[tuple[str, Entries]]:
        """A cluster's read of several streams: one non-blocking XREADGROUP each, in rounds
        until something comes or `block_ms` passes (the wait between rounds grows from
        CLUSTER_POLL_S to CLUSTER_IDLE_S while the streams stay empty)."""
        until = time.monotonic() + (block_ms or 0) / 1000
        while True:
            found: list[tuple[str, Entries]] = []
            for stream in streams:
                reply = self.redis.xreadgroup(keys.GROUP, self.id, {stream: ">"}, count=count)
                found += [(as_text(name), entries) for name, entries in reply or [] if entries]
            if found:
                self._idle_s = CLUSTER_POLL_S
                return found
            if time.monotonic() >= until:
                return []
            time.sleep(min(self._idle_s, max(0.0, until - time.monotonic())))
            self._idle_s = min(CLUSTER_IDLE_S, self._idle_s * 2)

    def _peek_rows(self, stream: str) -> float:
        """Rows per job on a stream this consumer has not read yet: those of its oldest entry
        (one XRANGE, once), or 1 while the stream is empty (a blocking read wakes on the
        first entry added, so it does not take a backlog of big jobs at once). An empty stream
        is looked at again only after PEEK_AGAIN_S (reads between a font's steps poll often)."""
        now = time.monotonic()
        if stream == keys.CHECKS or now < self._peeked.get(stream, 0.0):
            return 1.0  # the checks stream holds no jobs; an empty stream was just looked at
        oldest = self.redis.xrange(stream, count=1)
        try:
            rows = parse_entry(*oldest[0]).rows if oldest else 0
        except (KeyError, ValueError, codec.CodecError):
            rows = 0
        if rows <= 0:
            self._peeked[stream] = now + PEEK_AGAIN_S
            return 1.0
        self._rows_per_job[stream] = float(rows)
        return self._rows_per_job[stream]

    def learn_time(
        self, stream: str, jobs: int, busy_s: float, cost: float = 0.0, work: tuple[str, ...] = ()
    ) -> None:
        """How long a batch took (app/queue/pace.py): what reads and shedding pace by."""
        self.paces.learn(stream, jobs, busy_s, cost, work)

    def rate(self, stream: str, work: tuple[str, ...] | None = None) -> float:
        """The cost this worker runs a second on the stream (Paces.rate; 0: not measured)."""
        return self.paces.rate(stream, work)

    def _learn_rows(self, stream: str, jobs: list[Job]) -> None:
        """Rows per job on the stream, smoothed: what the next read's entry count follows."""
        for job in jobs:
            seen = self._rows_per_job.get(stream, float(job.rows))
            self._rows_per_job[stream] = 0.5 * seen + 0.5 * max(1, job.rows)

    def admit(self, stream: str, entries: Iterable[tuple[bytes, dict[bytes, bytes]]]) -> list[Job]:
        """Parse entries and mark their jobs running; drop cancelled, answered or expired ones."""
        parsed = self._parse(stream, entries)
        if not parsed:
            return []
        self._learn_rows(stream, parsed)
        start_ms = now_ms()
        verdicts = self._start(
            keys=[keys.job(job.job_id) for job in parsed], args=[self.id, start_ms]
        )
        runnable: list[Job] = []
        for job, verdict in zip(parsed, verdicts, strict=True):
            job.started_ms = start_ms
            if verdict != b"run":
                self.drop(stream, job.entry_id)
            elif job.deadline_ms < start_ms:
                self.fail(stream, job, DeadlineExceeded("the job's deadline passed in the queue"))
            else:
                runnable.append(job)
        return self._shed_late(stream, runnable, start_ms)

    def _shed_late(self, stream: str, runnable: list[Job], start_ms: int) -> list[Job]:
        """Answer at once, 429 with Retry-After, the jobs this batch cannot finish by their
        deadline at the pace this worker measured for their work class (`rate`, cost per busy
        second): their clients would get a 504 at the deadline after the work was done for
        nothing (the flood of bench/overload.py, admitted at a rate measured on a quieter
        machine). The whole batch ends together, after the cost of all it runs. The batch's
        first job runs unless it would be late even at twice the measured pace, so a pace
        measured in a bad moment is measured again rather than shedding every job after it."""
        if not runnable or not self.rate(stream):
            return runnable
        first, rest = runnable[0], runnable[1:]
        kept = [first]
        if start_ms + self._pace_ms(stream, first) / 2 > first.deadline_ms:
            self.shed(stream, first, start_ms + self._pace_ms(stream, first))
            kept = []
        done_ms = start_ms + sum(self._pace_ms(stream, job) for job in kept + rest)
        for job in rest:
            if job.deadline_ms < done_ms:
                self.shed(stream, job, done_ms)
            else:
                kept.append(job)
        return kept

    def _pace_ms(self, stream: str, job: Job) -> float:
        """How long the job takes at the pace measured for its work class (ms; needs a rate)."""
        return 1000 * job.cost / self.rate(stream, job.work)

    def shed(self, stream: str, job: Job, done_ms: float) -> None:
        """429 `overloaded` for a job that would be done at `done_ms`, after its deadline."""
        self.fail(stream, job, too_late(job, done_ms))

    def _parse(self, stream: str, entries: Iterable[tuple[bytes, dict[bytes, bytes]]]) -> list[Job]:
        """The entries as jobs; a malformed one is logged and dropped."""
        parsed: list[Job] = []
        for entry_id, fields in entries:
            try:
                parsed.append(parse_entry(entry_id, fields))
            except (KeyError, ValueError, codec.CodecError) as exc:
                log.error("worker.bad_entry stream=%s entry=%s error=%s", stream, entry_id, exc)
                self.drop(stream, entry_id)
        return parsed

    def drop(self, stream: str, entry_id: bytes | str) -> None:
        """Ack and delete an entry that gets no answer (cancelled, answered, malformed)."""
        self._drop(keys=[stream, keys.backlog(stream)], args=[keys.GROUP, entry_id])

    # -- answering ---------------------------------------------------------------------------

    def finish(
        self, stream: str, jobs: Sequence[Job], statuses: Sequence[JobStatus], blobs: list[bytes]
    ) -> None:
        """Store, ack and publish a batch's results in one script call."""
        script_keys = [stream, keys.backlog(stream)]
        args: list[Any] = [keys.GROUP, self.result_ttl_s(stream), now_ms()]
        for job, status, blob in zip(jobs, statuses, blobs, strict=True):
            script_keys += [keys.job(job.job_id), keys.result(job.job_id)]
            args += [str(status), blob, job.entry_id, job.reply, job.job_id]
        self._finish(keys=script_keys, args=args)

    def fail(self, stream: str, job: Job, error: HanmoError) -> None:
        """Answer one job with the error's problem, naming the version it was sent to."""
        self.on_failure(stream, error)
        self.finish(stream, [job], [JobStatus.FAILED], [failed_blob(stream, job, error)])

    def fail_waiting(self, stream: str, error: HanmoError, before_ms: int | None = None) -> int:
        """Fail the stream's entries (read or not) added before `before_ms` (all without it),
        with the error: for a stream that no worker will read. Returns how many."""
        end = "+" if before_ms is None else f"({before_ms}-0"
        entries = self.redis.xrange(stream, "-", end, count=1000)
        for job in self._parse(stream, entries):
            self.fail(stream, job, error)
        return len(entries)

    def adopt_streams(self) -> None:
        """List every job stream in the set the stale sweep reads: those made before the set
        existed (entries survive restarts) are listed by no enqueue."""
        found = list(self.redis.scan_iter(match=keys.STREAM_PATTERN, _type="stream"))
        if found:
            self.redis.sadd(keys.STREAMS, *found)

    def forget_stream(self, stream: str) -> None:
        """Drop an empty stream from the list the stale sweep reads. The api lists a stream
        after each entry it adds (app/queue/client.py), so an entry added while this runs is
        either seen by the XLEN after the SREM (and the stream listed again) or listed by its
        own SADD after the SREM: none is left in an unlisted stream."""
        self.redis.srem(keys.STREAMS, stream)
        if self.redis.xlen(stream) > 0:
            self.redis.sadd(keys.STREAMS, stream)

    # -- recovery ----------------------------------------------------------------------------

    def sweep_dead(self, streams: Iterable[str]) -> list[tuple[str, Entries]]:
        """Claim the entries of dead consumers (heartbeat key gone) and remove those consumers
        from the group; returns what is to run again (too-often-delivered entries are
        dead-lettered instead). The checks stream's dead consumers are only forgotten."""
        taken: list[tuple[str, Entries]] = []
        for stream in streams:
            for dead in self.group.dead(stream, self.id):
                claimed = self.group.claim(stream, self.id, owner=dead)
                if claimed:
                    log.warning(
                        "worker.claimed_dead stream=%s from=%s entries=%d",
                        stream,
                        dead,
                        len(claimed),
                    )
                    taken.append((stream, self._take(stream, claimed)))
                self._forget(stream, dead)
        for dead in self.group.dead(keys.CHECKS, self.id):  # checks are not reclaimed here
            self._forget(keys.CHECKS, dead)
        return [(stream, entries) for stream, entries in taken if entries]

    def reclaim_idle(self, streams: Iterable[str], idle_ms: int) -> list[tuple[str, Entries]]:
        """Claim entries idle past the visibility timeout, whoever holds them (a hung worker
        that still beats); returns what is to run again."""
        taken: list[tuple[str, Entries]] = []
        for stream in streams:
            claimed = self.group.claim(stream, self.id, idle_ms=idle_ms)
            if claimed:
                log.warning("worker.reclaimed stream=%s entries=%d", stream, len(claimed))
                taken.append((stream, self._take(stream, claimed)))
        return [(stream, entries) for stream, entries in taken if entries]

    def _take(self, stream: str, claimed: list[Claimed]) -> Entries:
        """The claimed entries to run; dead-letters those delivered too often, acks deleted
        ones (a cancelled or expired job's)."""
        runnable: Entries = []
        for entry in claimed:
            if entry.fields is None:
                self.redis.xack(stream, keys.GROUP, entry.entry_id)
            elif entry.deliveries >= self.max_deliveries:
                self._dead_letter(stream, entry.entry_id, entry.fields, entry.deliveries)
            else:
                runnable.append((entry.entry_id, entry.fields))
        return runnable

    def _forget(self, stream: str, consumer: str) -> None:
        if self.group.forget(stream, consumer):
            log.info("worker.forgot_consumer stream=%s consumer=%s", stream, consumer)

    def _dead_letter(
        self, stream: str, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int
    ) -> None:
        job = parse_entry(entry_id, fields)
        log.error("worker.dead_letter job=%s deliveries=%d", job.job_id, deliveries)
        self.redis.xadd(
            keys.DEAD_LETTER,
            {"job": job.job_id, "stream": stream, "deliveries": deliveries},
            maxlen=DEAD_LETTER_MAXLEN,
            approximate=True,
        )
        self.fail(
            stream,
            job,
            JobFailed(
                f"the job was delivered {deliveries} times without finishing (its workers"
                " died); it will not be retried"
            ),
        )


def too_late(job: Job, done_ms: float, ahead: str = "the work ahead") -> Overloaded:
    """429 `overloaded` for a job that would be done at `done_ms`, after its deadline, with
    the seconds it would be late as Retry-After."""
    late_s = max(1, math.ceil((done_ms - job.deadline_ms) / 1000))
    return Overloaded(
        f"{ahead} of this job cannot finish by its deadline at the pace its worker runs "
        f"(about {late_s} s too late): retry later",
        retry_after_s=late_s,
    )


def failed_blob(stream: str, job: Job, error: HanmoError) -> bytes:
    """A job's stored failure: the error's problem, naming the version it was sent to."""
    model, version = keys.stream_version(stream)
    problem = {
        **error.problem(),
        "job_id": job.job_id,
        "model": model,
        "version": version,
        "alias": job.alias,
    }
    return pack_failed(problem)
