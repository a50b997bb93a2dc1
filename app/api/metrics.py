"""Prometheus metrics of the api process. Worker timings arrive with each result."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.queue import keys
from app.queue.results import Outcome
from app.redis_conn import as_text

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
LABELS = ("model", "version", "alias")


class Metrics:
    """One registry per app instance, so tests can build several apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "hanmo_requests", "HTTP requests handled", ("route", "status"), registry=r
        )
        self.request_seconds = Histogram(
            "hanmo_request_seconds",
            "End-to-end request time",
            ("route",),
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.queue_wait_seconds = Histogram(
            "hanmo_queue_wait_seconds",
            "Time a job waited in its stream",
            LABELS,
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.compute_seconds = Histogram(
            "hanmo_compute_seconds",
            "Model run time of the batch a job ran in",
            LABELS,
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.batch_rows = Histogram(
            "hanmo_batch_rows",
            "Rows in the batch a job ran in",
            LABELS,
            buckets=ROW_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "hanmo_queue_depth",
            "Jobs queued or running per version",
            ("model", "version"),
            registry=r,
        )
        # Per model, every version's stream together, so that a query on it (KEDA's trigger:
        # deploy/kubernetes/base/worker-scaledobject.yaml) names no version and survives a
        # promote. Read from Redis at each scrape; absent while Redis is away, never stale.
        self.queue_backlog = Gauge(
            "hanmo_queue_backlog",
            "Jobs queued or running per model, all its versions' streams (XLEN summed)",
            ("model",),
            registry=r,
        )
        self.queue_pending = Gauge(
            "hanmo_queue_pending",
            "Jobs a worker has read and not yet finished per model, all its versions (XPENDING)",
            ("model",),
            registry=r,
        )
        self.calibration_coverage = Gauge(
            "hanmo_calibration_coverage",
            "Observed interval coverage from feedback",
            ("model", "version", "level"),
            registry=r,
        )
        self.calibration_nll = Gauge(
            "hanmo_calibration_nll",
            "Mean NLL of fed-back outcomes",
            ("model", "version"),
            registry=r,
        )
        self.calibration_ece = Gauge(
            "hanmo_calibration_ece", "ECE of fed-back outcomes", ("model", "version"), registry=r
        )
        self.render_cache = Counter(
            "hanmo_render_cache",
            "Rendered job images (style sheets) by whether the stored bytes answered",
            ("result",),
            registry=r,
        )
        self.failures = Counter(
            "hanmo_failures", "Failed inference requests by reason", ("model", "reason"), registry=r
        )

    def set_backlog(self, backlog: dict[str, tuple[int, int]] | None) -> None:
        """Replace the per-model backlog gauges with (entries, pending) per model; None (Redis
        away) leaves them empty, so a scaler sees no value rather than a stale one."""
        self.queue_backlog.clear()
        self.queue_pending.clear()
        for model, (entries, pending) in (backlog or {}).items():
            self.queue_backlog.labels(model).set(entries)
            self.queue_pending.labels(model).set(pending)

    def observe_calibration(self, stats: dict[str, Any]) -> None:
        """Publish a version's running calibration as gauges."""
        model, version = str(stats["model"]), str(stats["version"])
        if stats.get("nll") is not None:
            self.calibration_nll.labels(model, version).set(stats["nll"])
        if stats.get("ece") is not None:
            self.calibration_ece.labels(model, version).set(stats["ece"])
        for level, coverage in stats.get("coverage", {}).items():
            if coverage["observed"] is not None:
                self.calibration_coverage.labels(model, version, level).set(coverage["observed"])

    def observe_outcome(self, outcome: Outcome) -> None:
        """Count a finished job once: timings of a success, the reason of a failure."""
        source = outcome.info if outcome.ok else (outcome.problem or {})
        labels = (
            str(source.get("model", "")),
            str(source.get("version", "")),
            str(source.get("alias", "")),
        )
        if outcome.ok:
            self.observe_job(labels, outcome.info)
        else:
            reason = str(source.get("type", "")).rsplit("/", 1)[-1]
            self.failures.labels(labels[0], reason).inc()

    def observe_job(self, labels: tuple[str, str, str], info: dict[str, Any]) -> None:
        if "queue_ms" in info:
            self.queue_wait_seconds.labels(*labels).observe(max(0.0, info["queue_ms"]) / 1000)
        if "compute_ms" in info:
            self.compute_seconds.labels(*labels).observe(info["compute_ms"] / 1000)
        if "batch_rows" in info:
            self.batch_rows.labels(*labels).observe(info["batch_rows"])


async def queue_backlog(redis: Any, models: Iterable[str] = ()) -> dict[str, tuple[int, int]]:
    """(entries, pending) per model over the streams of all its versions (keys.STREAMS lists
    every stream a job was enqueued on), in one round trip; each of `models` (those served)
    starts at (0, 0), so an idle model reads 0 rather than nothing."""
    streams = sorted(as_text(s) for s in await redis.smembers(keys.STREAMS))
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xlen(stream)
            pipe.xpending(stream, keys.GROUP)
        replies = await pipe.execute(raise_on_error=False)
    backlog = dict.fromkeys(models, (0, 0))
    for stream, entries, pending in zip(streams, replies[::2], replies[1::2], strict=True):
        model = keys.stream_version(stream)[0]
        if isinstance(entries, Exception):
            continue
        # NOGROUP: no worker has read the stream yet, so nothing of it is pending
        pending_count = 0 if isinstance(pending, Exception) else int(pending["pending"])
        total = backlog.get(model, (0, 0))
        backlog[model] = (total[0] + int(entries), total[1] + pending_count)
    return backlog


class RequestMetrics:
    """Pure ASGI middleware counting requests by route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
