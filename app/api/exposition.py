"""What a scrape of the api's /metrics renders, with one api process or several.

One process: its registry, with the process, platform and GC collectors. Several processes on
one port (`hanmo api --workers N`; a scrape reaches whichever process the kernel picks):
prometheus_client's multiprocess mode. `prepare_multiprocess_dir` (run by the CLI before
uvicorn starts its processes) gives them an empty PROMETHEUS_MULTIPROC_DIR; each process
writes its counters and histograms there, and a scrape of any of them merges every process's
files, so the host's totals never depend on which process answered and a restarted process
loses nothing. Process metrics (CPU, memory, open files) are each api process's own, read
from /proc by the scraped process and labelled `pid`; the GC collector, which can only read
the process it runs in, is left out there.

The queue gauges are read from Redis at each scrape and rendered by the scraped process alone
(`QueueGauges`), never kept in files: one copy per api replica, never stale."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
PID_SUFFIX = ".api-pid"  # a marker per api process; MultiProcessCollector reads only *.db


def multiprocess_dir() -> Path | None:
    """The multiprocess directory this process writes its metrics to, if any."""
    path = os.environ.get(DIR_ENV)
    return Path(path) if path else None


def prepare_multiprocess_dir(processes: int) -> Path | None:
    """Before the api's processes start: with more than one, point them at an empty metrics
    directory (a new temporary one, returned so the caller removes it after; or the one the
    environment names, emptied of a previous run's files). None with one process."""
    given = multiprocess_dir()
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        for stale in (*given.glob("*.db"), *given.glob(f"*{PID_SUFFIX}")):
            stale.unlink(missing_ok=True)
        return None
    if processes <= 1:
        return None
    made = Path(tempfile.mkdtemp(prefix="hanmo-api-metrics-"))
    os.environ[DIR_ENV] = str(made)
    return made


def remove_multiprocess_dir(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def multiprocess_registry() -> CollectorRegistry:
    """The registry a process of a multiprocess api renders: every process's files merged,
    the api processes' own process metrics, the platform (Python version) once."""
    directory = multiprocess_dir()
    assert directory is not None
    (directory / f"{os.getpid()}{PID_SUFFIX}").touch()  # how the scraped process finds us
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, str(directory))  # type: ignore[no-untyped-call]
    registry.register(ApiProcesses(directory))
    PlatformCollector(registry=registry)
    return registry


class ApiProcesses(Collector):
    """process_* of every live api process that shares the directory, labelled `pid`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._collectors: dict[int, ProcessCollector] = {}

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for pid in self._pids():
            collector = self._collectors.get(pid)
            if collector is None:
                collector = ProcessCollector(pid=functools.partial(int, pid), registry=None)
                self._collectors[pid] = collector
            for family in collector.collect():  # nothing for a pid that is gone
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                merged.samples += [
                    s._replace(labels={**s.labels, "pid": str(pid)}) for s in family.samples
                ]
        yield from families.values()

    def _pids(self) -> list[int]:
        return sorted(
            int(p.name.removesuffix(PID_SUFFIX)) for p in self.directory.glob(f"*{PID_SUFFIX}")
        )


@dataclass(frozen=True, slots=True)
class QueueReading:
    """Per stream (model, version): (entries, pending), as read at one scrape; None while
    Redis does not answer (the gauges are then left out, never stale)."""

    streams: dict[tuple[str, int], tuple[int, int]] | None


class QueueGauges(Collector):
    """The Redis-wide queue gauges of one scrape. Every api replica reads the same numbers,
    so a dashboard takes `max by (model[, version])` over replicas, never `sum`."""

    def __init__(self, reading: QueueReading) -> None:
        self.reading = reading

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "hanmo_queue_depth",
            "Jobs queued or running per version (XLEN of its stream); the same in every api "
            "replica: aggregate with max, not sum",
            labels=("model", "version"),
        )
        backlog = GaugeMetricFamily(
            "hanmo_queue_backlog",
            "Jobs queued or running per model, all its versions' streams (XLEN summed)",
            labels=("model",),
        )
        pending = GaugeMetricFamily(
            "hanmo_queue_pending",
            "Jobs a worker has read and not yet finished per model, all its versions (XPENDING)",
            labels=("model",),
        )
        per_model: dict[str, tuple[int, int]] = {}
        for (model, version), (entries, held) in sorted((self.reading.streams or {}).items()):
            depth.add_metric((model, str(version)), entries)
            total = per_model.get(model, (0, 0))
            per_model[model] = (total[0] + entries, total[1] + held)
        for model, (entries, held) in per_model.items():
            backlog.add_metric((model,), entries)
            pending.add_metric((model,), held)
        yield from (depth, backlog, pending)


def render(registry: CollectorRegistry, reading: QueueReading) -> bytes:
    """The exposition text: the process's (or processes') metrics, then the queue gauges."""
    scrape = CollectorRegistry()
    scrape.register(QueueGauges(reading))
    return generate_latest(registry) + generate_latest(scrape)
