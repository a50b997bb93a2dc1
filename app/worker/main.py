"""One worker process: load the served model versions, then read, batch, run and reply.

The worker schedules: which versions to hold (app/worker/models.py), when to look again, and
what to run (app/worker/runner.py). The streams protocol (read, admit, finish, reclaim,
dead-letter) is app/queue/consumer.py's."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from redis import Redis
from redis import exceptions as redis_errors
from sqlalchemy.orm import Session, sessionmaker

from app.errors import HanmoError
from app.kinds.catalog import KINDS
from app.queue import keys
from app.queue.consumer import StreamConsumer
from app.queue.entries import Entries
from app.queue.errors import REDIS_ERRORS
from app.queue.late import QueueLook
from app.registry import artifacts, versions
from app.registry.service import ServedVersion
from app.runtime.check_process import run_check
from app.runtime.models import LoadedModel, load_model
from app.settings import Settings
from app.worker.heartbeat import Heartbeat
from app.worker.lanes import LongLane
from app.worker.metrics import WorkerMetrics
from app.worker.models import ModelSet
from app.worker.moves import settle_moves
from app.worker.runner import BatchRunner
from app.worker.stale import sweep_stale
from app.worker.steps import StepLane

log = logging.getLogger("hanmo.worker")
GENERATION_CHECK_S = 0.2


class Worker:
    def __init__(
        self,
        settings: Settings,
        worker_id: str,
        device: str,
        threads: int,
        sessions: sessionmaker[Session],
        redis: Redis,
        only: set[str] | None = None,
    ) -> None:
        self.settings = settings
        self.id = worker_id
        self.device = device
        self.threads = threads
        self.sessions = sessions
        self.redis: Any = redis  # redis-py types replies as wide unions
        self.stopping = threading.Event()
        self.consumer = StreamConsumer(
            redis,
            worker_id,
            max_deliveries=settings.max_deliveries,
            result_ttl_s=self._result_ttl_s,
        )
        self.model_set = ModelSet(settings, self.consumer, self._load_model, sessions, only)
        self.heartbeat = Heartbeat(self)
        self.runner = BatchRunner(settings, self.consumer, self._record_error)
        self.lane = LongLane(settings, self.consumer, self._record_error)
        self.steps = StepLane(settings, self.consumer, self._record_error)  # autoregressive
        self.runner.take_long = lambda *job: self.steps.take(*job) or self.lane.take(*job)
        self.runner.between_chunks = self._between_chunks
        self._between = False  # serving other streams between a long batch's chunks
        self.metrics = WorkerMetrics()  # served by the pool's slot (worker/metrics.py)
        self.metrics.watch(self)
        self.runner.observe_batch = self.metrics.observe_batch
        self.steps.observe_step = self.metrics.observe_batch
        self.consumer.on_failure = self._observe_failure
        self.busy_since: float | None = None  # epoch s: when the step in hand began
        self._next_refresh = 0.0
        self._next_reclaim = 0.0
        self._next_sweep = 0.0
        self._next_stale = 0.0
        self._next_generation = 0.0
        self._generation: bytes | None = None
        self._checks_ready = False
        self._checker = ThreadPoolExecutor(1, thread_name_prefix="hanmo-check")

    @property
    def models(self) -> dict[str, LoadedModel]:
        """stream key -> the model loaded for it"""
        return self.model_set.models

    @property
    def failed_loads(self) -> dict[str, str]:
        """version key -> why it would not load"""
        return self.model_set.failed_loads

    @property
    def only(self) -> set[str] | None:
        return self.model_set.only

    # -- lifecycle ---------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: finish the batch in hand, stop reading, exit."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())

    def run(self, burst: bool = False) -> None:
        """Serve until stopped; in burst mode, return once every stream is drained."""
        self.refresh_models()
        self.heartbeat.start()
        looking = self._start_look()
        backoff_s = 0.05
        try:
            while not self.stopping.is_set():
                try:
                    worked = self.step()
                    backoff_s = 0.05
                except REDIS_ERRORS as exc:
                    log.warning("worker.redis_down error=%s retry_s=%.2f", exc, backoff_s)
                    self.stopping.wait(backoff_s)
                    backoff_s = min(backoff_s * 2, 1.0)
                    continue
                except redis_errors.ResponseError as exc:
                    # NOGROUP: no such stream or group; UNBLOCKED: Redis 7 ends a blocked
                    # XREADGROUP so when its stream is deleted
                    if not str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                        raise
                    self._regroup(exc)
                    continue
                if burst and not worked:
                    break
        finally:
            # a check still running is left unacked: POST …/versions/{v}/check queues it again
            self._checker.shutdown(wait=False, cancel_futures=True)
            looking.set()
            self.heartbeat.stop()

    def _start_look(self) -> threading.Event:
        """Start the thread that answers 429 the queued jobs that can no longer finish by their
        deadline (app/queue/late.py; off when queue_look_s is 0); set the event to stop it."""
        stop = threading.Event()
        if self.settings.queue_look_s > 0:
            look = QueueLook(self.consumer, self.settings.heartbeat_ttl_s)
            threading.Thread(
                target=look.run,
                args=(lambda: list(self.models), self.settings.queue_look_s, stop),
                name="hanmo-look",
                daemon=True,
            ).start()
        return stop

    def _regroup(self, exc: Exception) -> None:
        """A stream or its group is gone (a Sentinel failover to a replica that had not yet
        received them; a stream deleted by hand): create them again and go on, instead of
        the slot dying on the error (tests/queue/test_sentinel.py saw that once in CI)."""
        log.warning("worker.group_missing error=%s", exc)
        streams = [*self.models, *([keys.CHECKS] if self._checks_ready else [])]
        try:
            for stream in streams:
                self.consumer.ensure_group(stream)
        except REDIS_ERRORS:  # no master yet: the next turn meets the error again
            pass
        self.stopping.wait(0.05)  # never a hot loop, whatever the error keeps saying

    def step(self) -> bool:
        """One turn of the loop; True when it handled any job."""
        now = time.monotonic()
        if now >= self._next_generation:
            self._next_generation = now + GENERATION_CHECK_S
            if self._registry_changed():
                self._next_refresh = now  # look now, not at the poll
        if now >= self._next_refresh:
            self.refresh_models()
            self._next_refresh = now + self.settings.registry_poll_s
        worked = self._recover(now)
        if self.lane.due():  # a long job's next step; other jobs are read between steps
            self._busy(self.lane.run_step)
            return True
        return self._serve(worked)

    def _serve(self, worked: bool) -> bool:
        """Read the streams and serve what came, then run one step of every autoregressive
        model with rows in flight (app/worker/steps.py); True when it handled any job."""
        full = self.steps.full()  # an autoregressive lane that takes no more rows now
        streams = [stream for stream in self.models if stream not in full]
        if self._checks_ready:  # a worker serving nothing yet checks the first upload
            streams.append(keys.CHECKS)
        if not streams and self.steps.busy:
            self._busy(self.steps.run_step)
            return True
        if not streams:
            self.stopping.wait(min(1.0, self.settings.block_ms / 1000))
            return worked
        # never block while a long job or autoregressive rows are in flight
        block_ms = None if self.lane.busy or self.steps.busy else self.settings.block_ms
        read = self.consumer.read(streams, self.settings.max_batch_rows, block_ms)
        if self.lane.busy:
            self.lane.read_between_steps(bool(read))
        for stream, entries in read:
            if stream == keys.CHECKS:  # off the job loop: a check takes seconds
                self._checker.submit(self.run_checks, entries)
            else:
                self.handle(stream, entries)
            worked = True
        if self.steps.busy:  # one step of every autoregressive model, then read again
            self._busy(self.steps.run_step)
        return worked or self.lane.busy or self.steps.busy

    def _registry_changed(self) -> bool:
        """Whether the registry moved (its generation) or the pinned versions wanted now
        differ from those held."""
        generation = self.redis.get(keys.REGISTRY_GENERATION)
        changed = generation != self._generation
        self._generation = generation
        return changed or self.model_set.needs_refresh(self.model_set.demand.recent())

    def _recover(self, now: float) -> bool:
        """Run again what dead or hung workers left pending; True when there was any."""
        claimed = []
        if now >= self._next_sweep:
            claimed += self.consumer.sweep_dead(list(self.models))
            self._next_sweep = now + self.settings.dead_consumer_check_s
        if now >= self._next_reclaim:
            idle_ms = self.settings.visibility_timeout_ms
            claimed += self.consumer.reclaim_idle(list(self.models), idle_ms)
            self._next_reclaim = now + idle_ms / 2000
        for stream, entries in claimed:
            self.handle(stream, entries)
        return bool(claimed)

    # -- models ------------------------------------------------------------------------------

    def refresh_models(self) -> None:
        """Load every newly served (or pinned and wanted) version, unload those no longer
        served once drained, commit the alias moves now ready, fail stale streams' jobs."""
        answered = self.model_set.refresh()
        settle_moves(self.sessions, self.model_set, self.id, self.redis)
        if not self._checks_ready:
            self.consumer.ensure_group(keys.CHECKS)
            self.consumer.adopt_streams()  # streams made before keys.STREAMS listed them
            self._checks_ready = True
        now = time.monotonic()
        if answered and now >= self._next_stale:  # never judge streams by an unknown registry
            self._next_stale = now + self.settings.registry_poll_s
            serving = self.model_set.served_keys | self.model_set.wanted_keys
            loaded = {m.served.key for m in self.models.values()}
            sweep_stale(self.consumer, self.settings, serving, loaded)

    def _load_model(self, served: ServedVersion) -> LoadedModel:
        try:
            return load_model(served, self.settings, self.device, self.threads)
        except Exception as exc:
            self._record_error(f"load {served.key}: {exc}")
            raise

    def _observe_failure(self, stream: str, error: HanmoError) -> None:
        if stream != keys.CHECKS:
            self.metrics.observe_failure(*keys.stream_version(stream), error.slug)

    def _record_error(self, error: str) -> None:
        self.heartbeat.last_error = error

    def _result_ttl_s(self, stream: str) -> int:
        """Predictions are kept for feedback (the retention); other results for result_ttl_s."""
        model = self.models.get(stream)
        if model is not None and KINDS[model.served.kind].keeps_results:
            return self.settings.prediction_retention_s
        return self.settings.result_ttl_s

    # -- jobs --------------------------------------------------------------------------------

    def handle(self, stream: str, entries: Entries) -> None:
        """Start, run and answer the jobs of one stream's entries (a long job's first step
        waits for the lane)."""
        self._busy(lambda: self.runner.handle(stream, self.models[stream], entries))

    def _between_chunks(self, stream: str) -> float:
        """Between two chunks of a long batch on `stream` (a style request's 256 glyphs run
        64 at a time), answer the jobs waiting on the other streams this worker serves, so a
        one-row sample waits for a chunk, not for a whole flood's batch. Not from inside such
        a turn (one level); autoregressive rows in flight take one step. Returns the seconds
        it took."""
        full = self.steps.full()
        others = [other for other in self.models if other != stream and other not in full]
        if self._between or not (others or self.steps.busy):
            return 0.0
        start = time.perf_counter()
        self._between = True
        try:
            for other, entries in self.consumer.read(others, self.settings.max_batch_rows):
                self.runner.handle(other, self.models[other], entries)
            if self.steps.busy:  # read([]) is empty
                self.steps.run_step()
        except REDIS_ERRORS as exc:  # the batch in hand goes on; its answer is stored later
            log.warning("worker.between_chunks_failed stream=%s error=%r", stream, exc)
        finally:
            self._between = False
        return time.perf_counter() - start

    def _busy(self, work: Callable[[], None]) -> None:
        """Run one step that nothing interrupts, marked in the heartbeat while it runs."""
        self.busy_since = time.time()
        started = time.perf_counter()
        try:
            work()
        finally:
            self.busy_since = None
            self.metrics.busy_seconds.inc(time.perf_counter() - started)

    # -- checks ------------------------------------------------------------------------------

    def run_checks(self, entries: Entries) -> None:
        """Check uploaded versions: load each in a separate process (a graph that crashes
        takes only that process down), then mark it READY or FAILED. Runs on the checker
        thread, so the job loop keeps serving meanwhile."""
        try:
            self._check_entries(entries)
        except Exception as exc:  # never lose the thread's error silently
            log.error("worker.check_failed error=%r", exc)

    def _check_entries(self, entries: Entries) -> None:
        for entry_id, fields in entries:
            model = fields.get(b"model", b"").decode()
            version = int(fields.get(b"version", b"0"))
            uri = fields.get(b"uri", b"").decode()
            ok, message = run_check(uri, self.settings, self.device)
            try:
                with self.sessions.begin() as session:
                    versions.finish_check(session, model, version, ok, message)
            except Exception as exc:  # leave the entry pending: another worker retries it
                log.warning("worker.check_unrecorded version=%s:%s error=%s", model, version, exc)
                continue
            log.info("worker.checked version=%s:%s ok=%s %s", model, version, ok, message)
            if not ok:  # a FAILED version keeps its row (and reason), not its files
                artifacts.remove(uri, self.settings)
            self.redis.xack(keys.CHECKS, keys.GROUP, entry_id)
            self.redis.xdel(keys.CHECKS, entry_id)
            self.redis.incr(keys.REGISTRY_GENERATION)
