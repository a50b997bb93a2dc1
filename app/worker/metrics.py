"""A worker process's Prometheus metrics on a port of its own (`GET /metrics`).

The counters and histograms (batches, rows, compute seconds, queue wait, failures, busy
seconds) are kept as batches run; the gauges (versions loaded, long jobs held, the step in
hand) are read from the worker when the endpoint is scraped. One registry per worker, so tests
can run several workers in a process.

Each slot process of the pool serves its own registry on `port + slot index` rather than one
port for the pool in prometheus_client's multiprocess mode: the gauges live in the slot's
memory and are read at scrape time, which multiprocess mode cannot aggregate (it sums values
written to per-process files), and a restarted slot simply starts its counters over (a counter
reset, which rate() handles) with no files to clean up. On Kubernetes a pod runs one slot."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from app.queue.entries import Job
    from app.runtime.models import LoadedModel
    from app.worker.main import Worker

log = logging.getLogger("hanmo.worker")
VERSION_LABELS = ("model", "version")
PORT_ENV = "HANMO_WORKER_METRICS_PORT"  # Settings.worker_metrics_port
# the api's buckets (app/api/metrics.py), so a dashboard compares the two
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

# a `_created` series per counter and histogram child is noise (and a sample a scrape)
disable_created_metrics()  # type: ignore[no-untyped-call]


def configured_port(slot_index: int, base: int) -> int | None:
    """The port the slot `slot_index` serves /metrics on: `base` (HANMO_WORKER_METRICS_PORT)
    plus the slot's index; None when `base` is 0 (no endpoint)."""
    return base + slot_index if base > 0 else None


class WorkerMetrics:
    """The counters and histograms a worker keeps as it runs batches."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.batches = Counter("hanmo_worker_batches", "Batches run", VERSION_LABELS, registry=r)
        self.rows = Counter("hanmo_worker_rows", "Rows run in batches", VERSION_LABELS, registry=r)
        self.batch_rows = Histogram(
            "hanmo_worker_batch_rows",
            "Rows in each batch run",
            VERSION_LABELS,
            buckets=ROW_BUCKETS,
            registry=r,
        )
        self.compute_seconds = Histogram(
            "hanmo_worker_compute_seconds",
            "Time each batch ran on the model (inputs joined, graphs run, outputs split)",
            VERSION_LABELS,
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.queue_wait_seconds = Histogram(
            "hanmo_worker_queue_wait_seconds",
            "Time each job this worker ran waited in its stream (enqueue to start)",
            VERSION_LABELS,
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.failures = Counter(
            "hanmo_worker_failures",
            "Jobs this worker answered with a problem, by its reason (type slug)",
            (*VERSION_LABELS, "reason"),
            registry=r,
        )
        self.busy_seconds = Counter(
            "hanmo_worker_busy_seconds",
            "Time spent in steps (batches, long jobs' chunks); its rate is the utilisation",
            registry=r,
        )
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)

    def observe_batch(self, model: LoadedModel, jobs: Sequence[Job], compute_s: float) -> None:
        labels = (model.served.model, str(model.served.version))
        rows = sum(job.rows for job in jobs)
        self.batches.labels(*labels).inc()
        self.rows.labels(*labels).inc(rows)
        self.batch_rows.labels(*labels).observe(rows)
        self.compute_seconds.labels(*labels).observe(compute_s)
        wait = self.queue_wait_seconds.labels(*labels)
        for job in jobs:
            wait.observe(max(0, job.started_ms - job.enqueued_ms) / 1000)

    def observe_failure(self, model: str, version: int, reason: str) -> None:
        self.failures.labels(model, str(version), reason).inc()

    def watch(self, worker: Worker) -> None:
        """Add the gauges read from `worker` at each scrape."""
        self.registry.register(WorkerState(worker))


class WorkerState(Collector):
    """What the worker holds now, read at scrape time (from another thread: the reads are of
    a dict copied with list() and of plain attributes, as the heartbeat does)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        w = self.worker
        info = GaugeMetricFamily("hanmo_worker_info", "This worker", labels=("worker", "device"))
        info.add_metric((w.id, w.device), 1)
        loaded = GaugeMetricFamily(
            "hanmo_worker_loaded_versions",
            "Model versions loaded and served (1 each)",
            labels=(*VERSION_LABELS, "provider"),
        )
        for model in list(w.models.values()):
            loaded.add_metric((model.served.model, str(model.served.version), model.provider), 1)
        long_jobs = GaugeMetricFamily(
            "hanmo_worker_long_jobs", "Long jobs (fonts) held in the lane", value=len(w.lane.jobs)
        )
        busy_since = w.busy_since
        step = GaugeMetricFamily(
            "hanmo_worker_step_seconds",
            "How long the step in hand (a batch, a long job's chunk) has run; 0 between steps",
            value=max(0.0, time.time() - busy_since) if busy_since else 0.0,
        )
        yield from (info, loaded, long_jobs, step)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # no line per scrape
        pass


def serve(registry: CollectorRegistry, port: int, host: str = "0.0.0.0") -> WSGIServer:
    """Serve `registry` at http://host:port/metrics from a daemon thread; port 0 picks a free
    one (server.server_port). Stop it with shutdown() and server_close()."""
    server = make_server(host, port, make_wsgi_app(registry), _Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="hanmo-metrics", daemon=True).start()
    return server


def serve_slot(worker: Worker, slot_index: int) -> WSGIServer | None:
    """The slot's endpoint on its configured port; None when off, or when the port is taken
    (logged: a worker without metrics still serves jobs)."""
    port = configured_port(slot_index, worker.settings.worker_metrics_port)
    if port is None:
        return None
    try:
        server = serve(worker.metrics.registry, port)
    except OSError as exc:
        log.error("worker.metrics_failed port=%d error=%s", port, exc)
        return None
    log.info("worker.metrics port=%d", port)
    return server
