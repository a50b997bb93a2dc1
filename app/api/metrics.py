"""Prometheus metrics of the api process. Worker timings arrive with each result.

Names follow Prometheus' conventions (base units, `_total` counters, no `_created` series).
With several api processes on one port (`hanmo api --workers N`) every metric is kept in
prometheus_client's multiprocess files and a scrape of any process reads them all
(app/api/exposition.py)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import exposition
from app.api.exposition import QueueReading
from app.queue import keys
from app.queue.results import Outcome
from app.redis_conn import as_text

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
LABELS = ("model", "version", "alias")
HTTP_LABELS = ("method", "route", "status")
# a label value per method the api answers; anything else is one value, so a client sending
# made-up methods cannot add series
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))

# a `_created` series per counter and histogram child is noise (and a sample a scrape)
disable_created_metrics()  # type: ignore[no-untyped-call]
JobHistograms = tuple[Histogram, Histogram, Histogram]  # queue wait, compute, batch rows


class Metrics:
    """One registry per app instance, so tests can build several apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_request_duration = Histogram(
            "hanmo_http_request_duration_seconds",
            "HTTP requests by method, route template and status: time to the last body byte",
            HTTP_LABELS,
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
        # the latest value wins across the processes of a multiprocess api
        self.calibration_coverage = Gauge(
            "hanmo_calibration_coverage",
            "Observed interval coverage from feedback",
            ("model", "version", "level"),
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.calibration_nll = Gauge(
            "hanmo_calibration_nll",
            "Mean NLL of fed-back outcomes",
            ("model", "version"),
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.calibration_ece = Gauge(
            "hanmo_calibration_ece",
            "ECE of fed-back outcomes",
            ("model", "version"),
            registry=r,
            multiprocess_mode="mostrecent",
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
        self._job_children: dict[tuple[str, str, str], JobHistograms] = {}
        self.exposition = self._exposition()

    def _exposition(self) -> CollectorRegistry:
        """What /metrics renders (besides the queue gauges read at the scrape): this registry
        with the process, platform and GC collectors, or, with several api processes, every
        process's files merged and each process's own process metrics."""
        if exposition.multiprocess_dir() is not None:
            return exposition.multiprocess_registry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        return self.registry

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
        wait, compute, rows = self._job_children.get(labels) or self._job_child(labels)
        if "queue_ms" in info:
            wait.observe(max(0.0, info["queue_ms"]) / 1000)
        if "compute_ms" in info:
            compute.observe(info["compute_ms"] / 1000)
        if "batch_rows" in info:
            rows.observe(info["batch_rows"])

    def _job_child(self, labels: tuple[str, str, str]) -> JobHistograms:
        """A version's three job histograms, looked up once (a job's answer is on the
        request's path: the three labels() calls took 10 of observe_job's 15 us)."""
        children = self._job_children[labels] = (
            self.queue_wait_seconds.labels(*labels),
            self.compute_seconds.labels(*labels),
            self.batch_rows.labels(*labels),
        )
        return children


async def read_queues(redis: Any, served: Iterable[tuple[str, int]] = ()) -> QueueReading:
    """(entries, pending) per stream over every stream a job was enqueued on (keys.STREAMS),
    in one round trip; each served (model, version) starts at (0, 0), so an idle model reads
    0 rather than nothing."""
    streams = sorted(as_text(s) for s in await redis.smembers(keys.STREAMS))
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xlen(stream)
            pipe.xpending(stream, keys.GROUP)
        replies = await pipe.execute(raise_on_error=False)
    found = dict.fromkeys(served, (0, 0))
    for stream, entries, pending in zip(streams, replies[::2], replies[1::2], strict=True):
        if isinstance(entries, Exception):
            continue
        # NOGROUP: no worker has read the stream yet, so nothing of it is pending
        pending_count = 0 if isinstance(pending, Exception) else int(pending["pending"])
        found[keys.stream_version(stream)] = (int(entries), pending_count)
    return QueueReading(found)


class RequestMetrics:
    """Pure ASGI middleware timing requests by method, route template and status. It is on
    every request's path: each label combination's histogram child is looked up once and
    kept, so a request costs one dict lookup and one observe."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.duration = metrics.http_request_duration
        self._children: dict[tuple[str, str, int], Histogram] = {}

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
            method = scope["method"]
            key = (
                method if method in METHODS else "OTHER",
                getattr(scope.get("route"), "path", "unmatched"),
                status,
            )
            child = self._children.get(key) or self._child(key)
            child.observe(time.perf_counter() - started)

    def _child(self, key: tuple[str, str, int]) -> Histogram:
        method, route, status = key
        child = self._children[key] = self.duration.labels(method, route, str(status))
        return child
