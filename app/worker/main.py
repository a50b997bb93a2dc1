"""One worker process: load the served model versions, then read, batch, run and reply.

Delivery is at-least-once. An entry is acked only in the same atomic script that stores its
reply; entries a dead worker left pending are claimed by another as soon as its heartbeat
expires (or, from a hung worker, after the visibility timeout: app/worker/recovery.py); an
entry delivered `max_deliveries` times is failed to the client and dead-lettered."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from redis import Redis
from redis import exceptions as redis_errors
from sqlalchemy.orm import Session, sessionmaker

from app.errors import DeadlineExceeded, HanmoError, JobFailed
from app.queue import codec, keys, scripts
from app.queue.results import pack_done, pack_failed
from app.registry import admin, artifacts, service
from app.registry.check import run_check
from app.registry.service import ServedVersion
from app.runtime import progress
from app.runtime.models import LoadedModel, concat_rows, load_model, split_rows
from app.settings import Settings
from app.worker.batcher import chunks, plan_batches
from app.worker.heartbeat import Heartbeat
from app.worker.jobs import Job, group_by_inputs, parse_entry
from app.worker.recovery import Recovery

log = logging.getLogger("hanmo.worker")
GENERATION_CHECK_S = 0.2
GATHER_POLL_S = 0.001
REDIS_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


def now_ms() -> int:
    return int(time.time() * 1000)


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
        # redis-py types replies as wide unions; the stream replies' shapes are documented
        # by Redis itself, so the client is deliberately untyped here.
        self.redis: Any = redis
        self.only = only
        self.models: dict[str, LoadedModel] = {}  # stream key -> model
        self.failed_loads: dict[str, str] = {}  # version key -> error
        self.stopping = threading.Event()
        self.heartbeat = Heartbeat(self)
        self.recovery = Recovery(self)
        self._start = redis.register_script(scripts.START)
        self._finish = redis.register_script(scripts.FINISH)
        self._next_refresh = 0.0
        self._next_reclaim = 0.0
        self._next_sweep = 0.0
        self._next_generation = 0.0
        self._generation: bytes | None = None
        self._unwanted_since: dict[str, float] = {}  # stream -> when it stopped being served
        self._checks_ready = False
        self._stale_failures: set[str] = set()  # failed versions no longer asked for
        self._checker = ThreadPoolExecutor(1, thread_name_prefix="hanmo-check")

    # -- lifecycle ---------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: finish the batch in hand, stop reading, exit."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())

    def run(self, burst: bool = False) -> None:
        """Serve until stopped; in burst mode, return once every stream is drained."""
        self.refresh_models()
        self.heartbeat.start()
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
                if burst and not worked:
                    break
        finally:
            # a check still running is left unacked: POST …/versions/{v}/check queues it again
            self._checker.shutdown(wait=False, cancel_futures=True)
            self.heartbeat.stop()

    def step(self) -> bool:
        """One turn of the loop; True when it handled any job."""
        now = time.monotonic()
        if now >= self._next_generation:
            self._next_generation = now + GENERATION_CHECK_S
            generation = self.redis.get(keys.REGISTRY_GENERATION)
            if generation != self._generation:
                self._generation = generation
                self._next_refresh = now  # the registry changed: look now, not at the poll
        if now >= self._next_refresh:
            self.refresh_models()
            self._next_refresh = now + self.settings.registry_poll_s
        worked = False
        if now >= self._next_sweep:
            worked = self.recovery.sweep_dead()
            self._next_sweep = now + self.settings.dead_consumer_check_s
        if now >= self._next_reclaim:
            worked = self.recovery.reclaim_idle() or worked
            self._next_reclaim = now + self.settings.visibility_timeout_ms / 2000
        if not self.models:
            self.stopping.wait(min(1.0, self.settings.block_ms / 1000))
            return worked
        streams = dict.fromkeys(self.models, ">")
        if self._checks_ready:
            streams[keys.CHECKS] = ">"
        reply = self.redis.xreadgroup(
            keys.GROUP,
            self.id,
            streams,
            count=self.settings.max_batch_rows,
            block=self.settings.block_ms,
        )
        for stream, entries in reply or []:
            if stream.decode() == keys.CHECKS:  # off the job loop: a check takes seconds
                self._checker.submit(self.run_checks, entries)
            else:
                self.handle(stream.decode(), entries)
            worked = True
        return worked

    # -- models ------------------------------------------------------------------------------

    def refresh_models(self) -> None:
        """Load every newly served version; unload those no longer served once drained."""
        try:
            with self.sessions() as session:
                wanted = [
                    v
                    for v in service.served(session)
                    if self.only is None or v.model in self.only or v.key in self.only
                ]
        except Exception as exc:  # the registry is down: keep serving what is loaded
            log.warning("worker.registry_unavailable error=%s", exc)
            return
        wanted_streams = {keys.stream(v.model, v.version): v for v in wanted}
        wanted_keys = {v.key for v in wanted}
        for key in list(self.failed_loads):  # kept visible; retried when asked for again
            if key not in wanted_keys:
                self._stale_failures.add(key)
            elif key in self._stale_failures:
                self._stale_failures.discard(key)
                del self.failed_loads[key]
        for stream, served in wanted_streams.items():
            self._unwanted_since.pop(stream, None)
            if stream not in self.models and served.key not in self.failed_loads:
                self._load(stream, served)
        now = time.monotonic()
        for stream in [s for s in self.models if s not in wanted_streams]:
            since = self._unwanted_since.setdefault(stream, now)
            # keep draining: requests routed just before a move still arrive for a while
            if now - since >= self.settings.drain_s and self.redis.xlen(stream) == 0:
                log.info("worker.unloaded version=%s", self.models[stream].served.key)
                del self.models[stream]
                del self._unwanted_since[stream]
        self._settle_moves()
        if not self._checks_ready:
            self._ensure_group(keys.CHECKS)
            self._checks_ready = True

    def _settle_moves(self) -> None:
        """Commit each requested alias move whose versions this worker has loaded and warmed
        (then the api routes to them), or fail it when one of them would not load."""
        try:
            with self.sessions() as session:
                moves = admin.pending_moves(session)
        except Exception as exc:  # the registry is down: try again at the next refresh
            log.warning("worker.registry_unavailable error=%s", exc)
            return
        loaded = {m.served.key for m in self.models.values()}
        settled = False
        for move in moves:
            if self.only is not None and move.model not in self.only:
                continue
            needed = [f"{move.model}:{v}" for v in move.versions]
            errors = [f"{k}: {self.failed_loads[k]}" for k in needed if k in self.failed_loads]
            if not errors and not all(k in loaded for k in needed):
                continue
            error = f"worker {self.id} could not load " + "; ".join(errors) if errors else ""
            with self.sessions.begin() as session:
                done = admin.settle_move(session, move, f"worker:{self.id}", error)
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
            self.redis.incr(keys.REGISTRY_GENERATION)

    def run_checks(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Check uploaded versions: load each in a separate process (a graph that crashes
        takes only that process down), then mark it READY or FAILED. Runs on the checker
        thread, so the job loop keeps serving meanwhile."""
        try:
            self._check_entries(entries)
        except Exception as exc:  # never lose the thread's error silently
            log.error("worker.check_failed error=%r", exc)

    def _check_entries(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for entry_id, fields in entries:
            model = fields.get(b"model", b"").decode()
            version = int(fields.get(b"version", b"0"))
            uri = fields.get(b"uri", b"").decode()
            ok, message = run_check(uri, self.settings, self.device)
            try:
                with self.sessions.begin() as session:
                    admin.finish_check(session, model, version, ok, message)
            except Exception as exc:  # leave the entry pending: another worker retries it
                log.warning("worker.check_unrecorded version=%s:%s error=%s", model, version, exc)
                continue
            log.info("worker.checked version=%s:%s ok=%s %s", model, version, ok, message)
            if not ok:  # a FAILED version keeps its row (and reason), not its files
                artifacts.remove(uri, self.settings.resolved_artifact_root())
            self.redis.xack(keys.CHECKS, keys.GROUP, entry_id)
            self.redis.xdel(keys.CHECKS, entry_id)
            self.redis.incr(keys.REGISTRY_GENERATION)

    def _load(self, stream: str, served: ServedVersion) -> None:
        try:
            model = load_model(
                served, self.device, self.settings.resolved_cache_dir(), self.threads
            )
        except Exception as exc:  # a version that fails to load must not stop the others
            self.failed_loads[served.key] = str(exc)
            self.heartbeat.last_error = f"load {served.key}: {exc}"
            log.error("worker.load_failed version=%s error=%s", served.key, exc)
            return
        self._ensure_group(stream)
        self.models[stream] = model
        log.info(
            "worker.loaded version=%s provider=%s warmup_ms=%.1f",
            served.key,
            model.provider,
            model.warmup_ms,
        )

    def _ensure_group(self, stream: str) -> None:
        try:
            self.redis.xgroup_create(stream, keys.GROUP, id="0", mkstream=True)
        except redis_errors.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # -- jobs --------------------------------------------------------------------------------

    def handle(self, stream: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Start, run and answer the jobs of one stream's entries."""
        model = self.models[stream]
        jobs = self._admit(stream, entries)
        jobs = self._gather_more(stream, jobs)
        for group in group_by_inputs(jobs):  # e.g. sampling (z) apart from scoring (x)
            for batch in plan_batches([j.rows for j in group], self.settings.max_batch_rows):
                self._run_batch(stream, model, [group[i] for i in batch])

    def _admit(self, stream: str, entries: Iterable[tuple[bytes, dict[bytes, bytes]]]) -> list[Job]:
        """Parse entries and mark their jobs running; drop cancelled, answered or expired ones."""
        parsed: list[Job] = []
        for entry_id, fields in entries:
            try:
                parsed.append(parse_entry(entry_id, fields))
            except (KeyError, ValueError, codec.CodecError) as exc:
                log.error("worker.bad_entry stream=%s entry=%s error=%s", stream, entry_id, exc)
                self.redis.xack(stream, keys.GROUP, entry_id)
                self.redis.xdel(stream, entry_id)
        if not parsed:
            return []
        start_ms = now_ms()
        verdicts = self._start(
            keys=[keys.job(job.job_id) for job in parsed], args=[self.id, start_ms]
        )
        runnable: list[Job] = []
        for job, verdict in zip(parsed, verdicts, strict=True):
            job.started_ms = start_ms
            if verdict != b"run":
                self.redis.xack(stream, keys.GROUP, job.entry_id)
                self.redis.xdel(stream, job.entry_id)
            elif job.deadline_ms < start_ms:
                self.fail(stream, job, DeadlineExceeded("the job's deadline passed in the queue"))
            else:
                runnable.append(job)
        return runnable

    def _gather_more(self, stream: str, jobs: list[Job]) -> list[Job]:
        """With max_wait_ms set, wait that long for more rows before running a short batch.

        It polls (a non-blocking read, then a 1 ms sleep) rather than XREADGROUP BLOCK: Redis
        times blocked reads out from its server cron (10 Hz by default), so a BLOCK of 5 ms
        returned after 50-100 ms, and a lone request took ~100 ms (found by bench/peer.py)."""
        wait_ms = self.settings.max_wait_ms
        if wait_ms <= 0 or not jobs:
            return jobs
        deadline = time.monotonic() + wait_ms / 1000
        rows = sum(j.rows for j in jobs)
        while rows < self.settings.max_batch_rows:
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                break
            reply = self.redis.xreadgroup(
                keys.GROUP,
                self.id,
                {stream: ">"},
                count=self.settings.max_batch_rows - rows,
            )
            entries = reply[0][1] if reply else []
            if not entries:
                time.sleep(min(left_s, GATHER_POLL_S))
                continue
            more = self._admit(stream, entries)
            jobs.extend(more)
            rows += sum(j.rows for j in more)
        return jobs

    def _run_batch(self, stream: str, model: LoadedModel, jobs: list[Job]) -> None:
        rows = [j.rows for j in jobs]
        start = time.perf_counter()
        try:
            inputs = concat_rows([j.inputs for j in jobs])
            total = sum(rows)
            with progress.reporting(self._progress(stream, jobs[0]) if len(jobs) == 1 else None):
                parts = [
                    model.run({k: v[s] for k, v in inputs.items()})
                    for s in chunks(total, model.batch_rows(self.settings.max_batch_rows))
                ]
            outputs = concat_rows(parts)
        except Exception as exc:  # a graph that raises fails its jobs, never the worker
            log.error("worker.batch_failed version=%s error=%r", model.served.key, exc)
            self.heartbeat.last_error = f"{model.served.key}: {type(exc).__name__}: {exc}"
            failure = JobFailed(f"the model raised {type(exc).__name__} while running the batch")
            for job in jobs:
                self.fail(stream, job, failure)
            return
        compute_ms = (time.perf_counter() - start) * 1000
        info: dict[str, Any] = {
            "model": model.served.model,
            "version": model.served.version,
            "provider": model.provider,
            "runtime": model.runtime,
            "worker": self.id,
            "compute_ms": round(compute_ms, 3),
            "batch_rows": sum(rows),
        }
        model.stats["batches"] += 1
        model.stats["rows"] += sum(rows)
        self._reply(stream, jobs, split_rows(outputs, rows), info)
        log.debug(
            "worker.batch_done version=%s rows=%d compute_ms=%.2f",
            model.served.key,
            sum(rows),
            compute_ms,
        )

    def _progress(self, stream: str, job: Job) -> Callable[[float], None]:
        """A long job's reporter: writes its progress to the job record and re-claims its
        entry, so that other workers do not take a job that is running for a long time."""
        last = [0.0]

        def report(fraction: float) -> None:
            now = time.monotonic()
            if now - last[0] < 0.5 and fraction < 1.0:
                return
            last[0] = now
            try:
                pipe = self.redis.pipeline(transaction=False)
                pipe.hset(keys.job(job.job_id), "progress", round(fraction, 4))
                pipe.xclaim(stream, keys.GROUP, self.id, 0, [job.entry_id], justid=True)
                pipe.execute()
            except REDIS_ERRORS as exc:  # progress is best effort
                log.warning("worker.progress_failed job=%s error=%r", job.job_id, exc)

        return report

    def _reply(
        self, stream: str, jobs: list[Job], outputs: list[dict[str, Any]], info: dict[str, Any]
    ) -> None:
        blobs = [
            pack_done(
                tensors, {**info, "alias": job.alias, "queue_ms": job.started_ms - job.enqueued_ms}
            )
            for job, tensors in zip(jobs, outputs, strict=True)
        ]
        self._finish_jobs(stream, jobs, ["done"] * len(jobs), blobs)

    def fail(self, stream: str, job: Job, error: HanmoError) -> None:
        model, version = keys.stream_version(stream)
        problem = {
            **error.problem(),
            "job_id": job.job_id,
            "model": model,
            "version": version,
            "alias": job.alias,
        }
        self._finish_jobs(stream, [job], ["failed"], [pack_failed(problem)])

    def _result_ttl_s(self, stream: str) -> int:
        """Predictions are kept for feedback (the retention); other results for result_ttl_s."""
        model = self.models.get(stream)
        if model is not None and model.served.kind == "predictive":
            return self.settings.prediction_retention_s
        return self.settings.result_ttl_s

    def _finish_jobs(
        self, stream: str, jobs: list[Job], statuses: list[str], blobs: list[bytes]
    ) -> None:
        """Store, ack and publish a batch's results in one script call."""
        script_keys = [stream]
        args: list[Any] = [keys.GROUP, self._result_ttl_s(stream), now_ms()]
        for job, status, blob in zip(jobs, statuses, blobs, strict=True):
            script_keys += [keys.job(job.job_id), keys.result(job.job_id)]
            args += [status, blob, job.entry_id, job.reply, job.job_id]
        self._finish(keys=script_keys, args=args)
