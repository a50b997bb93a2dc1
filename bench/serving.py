"""Serving benchmark of hanmo on the tiny MLP sampler (16 -> 256 -> 784), every hanmo setting
at its default:

1. raw ONNX Runtime in this process (`OnnxGraph`, the worker's session options): rows/s at
   batch 1 and at the batch sizes the worker forms, and the p50 latency of one batch-1 call;
2. the drain rate of one worker emptying a stream pre-filled with one-row jobs through the
   api's own enqueue path, with default batching and with `max_batch_rows=1`;
3. hanmo over HTTP (`hanmo api` and `hanmo worker` processes) loaded by `hey` at several
   concurrencies.

It runs against a private embedded Redis and SQLite registry in a temporary directory.
Run it with `make bench` (or `.venv/bin/python -m bench.serving`); the figures are printed and
written to bench/out/serving.json. See bench/README.md."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import onnxruntime
from hanmo_client.schemas import SampleRequest
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from redis import Redis

from app.kinds.sampler import request as samplers
from app.noise import standard_normal_rows
from app.queue import keys
from app.queue.client import JobQueue
from app.queue.clock import now_ms
from app.redis_conn import EmbeddedRedis, async_client, sync_client
from app.registry.db import make_engine, make_sessionmaker, upgrade
from app.registry.service import ServedVersion
from app.runtime.sessions import OnnxGraph
from app.services.registration import register_directory
from app.settings import Settings
from app.worker.main import Worker
from app.worker.pool import plan_slots
from bench.hey import INSTALL_HINT, LoadResult, find_hey, run_hey

ROOT = Path(__file__).resolve().parents[1]
OUT_JSON = ROOT / "bench" / "out" / "serving.json"

RAW_BATCHES = (1, 8, 64)  # plus the default max_batch_rows
RAW_SECONDS_PER_BATCH = 0.5
RAW_WARM_UP_CALLS = 20
RAW_MIN_CALLS = 50
Z_DIM = 16  # the tiny sampler's noise width
DRAIN_JOBS = 20_000
SUBMIT_CONCURRENCY = 128
HTTP_CONCURRENCY = (1, 8, 64)
HTTP_SECONDS = 8.0
HTTP_BODY = json.dumps({"n": 1, "seed": 1, "format": "array"})
WARM_UP_REQUESTS = 50
READY_TIMEOUT_S = 90.0

TARGET_ADDED_P50_MS = 3.0
TARGET_DRAIN_RATIO = 4.0
PEER = ("peer: LitServe 0.2.19, c=1 (FIELD-NOTES)", "96 req/s, p50 11 ms")


class DefaultSettings(Settings):
    """hanmo's Settings reading neither HANMO_* variables nor .env: the benchmark measures the
    defaults whatever the calling shell exports. Only the locations are given explicitly."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


@dataclass(frozen=True, slots=True)
class RawFigures:
    """ONNX Runtime called in process, no queue and no HTTP."""

    threads: int
    p50_ms: dict[int, float]  # batch size -> median time of one call
    rows_per_s: dict[int, float]  # batch size -> rows per second at that median
    batch1_p50_ms: float


@dataclass(frozen=True, slots=True)
class DrainFigures:
    """One worker emptying a pre-filled stream of one-row jobs."""

    max_batch_rows: int
    jobs: int
    enqueue_s: float
    drain_s: float
    jobs_per_s: float


@dataclass(frozen=True, slots=True)
class Bench:
    """The benchmark's private hanmo: default settings at temporary locations, one model."""

    settings: Settings
    served: ServedVersion
    tmp: Path


@dataclass(slots=True)
class Report:
    """Every figure of one run, and the targets they are held to."""

    raw: RawFigures
    drains: list[DrainFigures]
    http: list[LoadResult] = field(default_factory=list)

    @property
    def drain_ratio(self) -> float:
        batched, single = self.drains
        return batched.jobs_per_s / single.jobs_per_s

    @property
    def added_p50_ms(self) -> float | None:
        """hanmo's p50 at concurrency 1 over HTTP minus the raw in-process batch-1 p50."""
        first = next((r for r in self.http if r.concurrency == 1), None)
        if first is None or first.p50_ms is None:
            return None
        return first.p50_ms - self.raw.batch1_p50_ms


# -- 1. raw ONNX Runtime ---------------------------------------------------------------------


def export_model(directory: Path) -> Path:
    """Export the tiny sampler (model.onnx + card.json) with `training.tiny_sampler.build`, in
    a child process: torch, its threads and its exporter's chatter stay out of this one."""
    code = (
        "import sys; from pathlib import Path; from training.tiny_sampler import build; "
        "build(Path(sys.argv[1]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"exporting the tiny sampler failed:\n{done.stderr[-2000:]}")
    return directory


def worker_threads(settings: Settings) -> int:
    """The intra-op threads that `hanmo worker` gives its one default CPU worker."""
    return plan_slots(["cpu"], 1, settings.intra_op_threads)[0].threads


def bench_raw(model: Path, batches: list[int], threads: int) -> RawFigures:
    """Per batch size, the median time of one call and the rows/s it makes, through the
    worker's session options. Medians, not means: a neighbour's burst on a shared machine
    lands in the tail, not in the figure."""
    graph = OnnxGraph(model, "cpu", threads)
    p50_ms = {batch: statistics.median(_call_times(graph, batch)) * 1000 for batch in batches}
    rows_per_s = {batch: batch * 1000 / ms for batch, ms in p50_ms.items()}
    return RawFigures(threads, p50_ms, rows_per_s, p50_ms[1])


def _call_times(graph: OnnxGraph, batch: int) -> list[float]:
    """Seconds per `graph.run` call on `batch` rows of seeded noise, after a warm-up."""
    feeds = {"z": standard_normal_rows(0, batch, Z_DIM)}
    for _ in range(RAW_WARM_UP_CALLS):
        graph.run(feeds)
    times: list[float] = []
    deadline = time.perf_counter() + RAW_SECONDS_PER_BATCH
    while (start := time.perf_counter()) < deadline or len(times) < RAW_MIN_CALLS:
        graph.run(feeds)
        times.append(time.perf_counter() - start)
    return times


# -- the private hanmo -----------------------------------------------------------------------


@contextmanager
def private_hanmo(tmp: Path, model_dir: Path, redis_url: str = "") -> Iterator[Bench]:
    """An embedded Redis (AOF on, unix socket), or the running Redis at `redis_url`, and a
    migrated SQLite registry with the model registered and aliased `production`."""
    redis = None if redis_url else EmbeddedRedis(tmp / "redis")
    if redis is not None:
        redis.start()
        redis_url = redis.url
    try:
        settings = DefaultSettings(
            home=tmp / "home",
            redis_url=redis_url,
            database_url=f"sqlite:///{tmp / 'registry.db'}",
        )
        upgrade(settings.database_url)
        served = register_directory(settings, model_dir, "production")
        yield Bench(settings, served, tmp)
    finally:
        if redis is not None:
            redis.stop()


def flush(settings: Settings) -> None:
    """Empty the benchmark's Redis (streams, jobs, results) between measurements."""
    client = sync_client(settings.redis_url)
    client.flushall()
    client.close()


# -- 2. drain rate ---------------------------------------------------------------------------


def drain_rate(bench: Bench, max_batch_rows: int, jobs: int) -> DrainFigures:
    """Pre-fill the stream with `jobs` one-row jobs, then time one worker emptying it."""
    settings = bench.settings.model_copy(update={"max_batch_rows": max_batch_rows})
    stream = keys.stream(bench.served.model, bench.served.version)
    flush(settings)
    start = time.perf_counter()
    job_ids = asyncio.run(prefill(settings, bench.served, range(jobs)))
    enqueue_s = time.perf_counter() - start
    started_s = run_worker_until_drained(settings)
    client = sync_client(settings.redis_url)
    try:
        finished_s = max(finished_ms(client, stream, job_ids)) / 1000
    finally:
        client.close()
    drain_s = finished_s - started_s
    return DrainFigures(max_batch_rows, jobs, enqueue_s, drain_s, jobs / drain_s)


async def prefill(settings: Settings, served: ServedVersion, seeds: range) -> list[str]:
    """Enqueue one-row sampling jobs exactly as the api does: `samplers.prepare` (noise from
    the seed, job meta) and `JobQueue.submit` (the ENQUEUE script). Deadlines are those of
    `Prefer: respond-async` jobs (max_timeout_ms), so none expires in a slow drain; the
    admission limit is the backlog's size (the default max_queue_depth is half of it)."""
    redis = async_client(settings.redis_url)
    queue = JobQueue(
        redis,
        "bench",
        max_depth=len(seeds),
        result_ttl_s=settings.result_ttl_s,
        idempotency_ttl_s=settings.idempotency_ttl_s,
    )
    stream = keys.stream(served.model, served.version)
    deadline = now_ms() + settings.max_timeout_ms

    async def submit(seed: int) -> str:
        request = SampleRequest(n=1, seed=seed, format="array")
        inputs, meta = samplers.prepare(served, request, settings.max_sample_rows)
        return (await queue.submit(stream, inputs, meta.wire(), deadline)).job_id

    job_ids: list[str] = []
    try:
        for first in range(0, len(seeds), SUBMIT_CONCURRENCY):
            chunk = seeds[first : first + SUBMIT_CONCURRENCY]
            job_ids += await asyncio.gather(*(submit(seed) for seed in chunk))
    finally:
        await redis.aclose()
    return job_ids


def run_worker_until_drained(settings: Settings) -> float:
    """Run one real Worker in this process (the threads `hanmo worker` gives it) until its
    stream is empty. Returns the epoch time at which it started reading, after it loaded and
    warmed up the model."""
    engine = make_engine(settings.resolved_database_url())
    redis = sync_client(settings.redis_url)
    worker = Worker(
        settings,
        f"bench-{os.getpid()}",
        "cpu",
        worker_threads(settings),
        make_sessionmaker(engine),
        redis,
    )
    try:
        worker.refresh_models()
        started_s = time.time()
        worker.run(burst=True)
    finally:
        redis.close()
        engine.dispose()
    return started_s


def finished_ms(client: Redis, stream: str, job_ids: list[str]) -> list[int]:
    """Each job's finish time; raises unless every job is done and the stream is empty."""
    with client.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(keys.job(job_id), "status", "finished_ms")
        rows = pipe.execute()
    not_done = sum(1 for status, _ in rows if status != b"done")
    left = client.xlen(stream)
    if not_done or left:
        raise RuntimeError(f"{not_done} of {len(job_ids)} jobs not done, {left} entries left")
    return [int(finished) for _, finished in rows]


# -- 3. HTTP ---------------------------------------------------------------------------------


def bench_http(bench: Bench, hey: str) -> list[LoadResult]:
    """`hanmo api` + `hanmo worker` as processes, loaded by hey at each concurrency."""
    settings = bench.settings.model_copy(update={"port": free_port()})
    flush(settings)
    with serving(settings, bench.tmp / "logs") as base_url:
        url = f"{base_url}/v1/models/{bench.served.model}/sample"
        warm_up(url)
        return [run_hey(hey, url, HTTP_BODY, c, HTTP_SECONDS) for c in HTTP_CONCURRENCY]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(settings: Settings) -> dict[str, str]:
    """This environment without HANMO_* variables, plus every setting as HANMO_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANMO_")}
    env.update(
        {
            # lists and dicts as JSON, the form pydantic-settings reads them in
            f"HANMO_{name.upper()}": json.dumps(value)
            if isinstance(value, list | dict)
            else str(value)
            for name, value in settings.model_dump().items()
            if value is not None
        }
    )
    return env


@contextmanager
def serving(
    settings: Settings,
    logs: Path,
    replicas: int = 1,
    wrappers: Mapping[str, Sequence[str]] | None = None,
) -> Iterator[str]:
    """Start `hanmo api` and `hanmo worker --device cpu [--replicas N]`; yield the base URL
    once /readyz says 200; stop both. `wrappers` puts a command before either one's python,
    by name ("api", "worker"): e.g. `ip netns exec NS taskset -c 1`."""
    logs.mkdir(parents=True, exist_ok=True)
    env = child_env(settings)
    worker = ["worker", "--device", "cpu", "--replicas", str(replicas)]
    wrappers = wrappers or {}
    children = {
        name: _spawn(args, env, logs / f"{name}.log", wrappers.get(name, ()))
        for name, args in (("api", ["api"]), ("worker", worker))
    }
    try:
        base_url = f"http://{settings.host}:{settings.port}"
        wait_ready(base_url, children, logs)
        yield base_url
    finally:
        for child in children.values():
            _stop(child)


def _spawn(
    args: list[str], env: dict[str, str], log: Path, wrapper: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [*wrapper, sys.executable, "-m", "app.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def wait_ready(base_url: str, children: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    """Poll GET /readyz until 200; fail with the children's log tails if they die or stall."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(timeout=2) as http:
        while True:
            dead = [name for name, child in children.items() if child.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"not ready in {READY_TIMEOUT_S} s"
                raise RuntimeError(f"hanmo did not come up: {why}\n{_log_tails(logs)}")
            try:
                if http.get(f"{base_url}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)


def _log_tails(logs: Path, lines: int = 15) -> str:
    return "\n".join(
        f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-lines:])
        for log in sorted(logs.glob("*.log"))
    )


def warm_up(url: str) -> None:
    """A few requests before measuring; each must answer 200 with a sample."""
    with httpx.Client(timeout=30) as http:
        for _ in range(WARM_UP_REQUESTS):
            response = http.post(
                url, content=HTTP_BODY, headers={"Content-Type": "application/json"}
            )
            if response.status_code != 200 or len(response.json()["samples"]) != 1:
                raise RuntimeError(
                    f"warm-up request failed: {response.status_code} {response.text[:300]}"
                )


# -- report ----------------------------------------------------------------------------------


def print_raw(raw: RawFigures) -> None:
    print(f"1. raw ONNX Runtime in process (OnnxGraph, CPU EP, {raw.threads} intra-op threads)")
    for batch, rate in raw.rows_per_s.items():
        print(f"   batch {batch:>4}: {rate:>9,.0f} rows/s  (p50 call {raw.p50_ms[batch]:.3f} ms)")


def print_drains(drains: list[DrainFigures]) -> None:
    print(f"2. one worker draining {drains[0].jobs:,} one-row jobs")
    for d in drains:
        print(
            f"   max_batch_rows={d.max_batch_rows:<4} {d.jobs_per_s:>8,.0f} jobs/s "
            f"(drain {d.drain_s:.2f} s; enqueue took {d.enqueue_s:.2f} s)"
        )
    batched, single = drains
    print(f"   ratio: {batched.jobs_per_s / single.jobs_per_s:.1f}x")


def print_http(http: list[LoadResult]) -> None:
    print(f"3. hanmo over HTTP (hey, {HTTP_SECONDS:g} s per level, POST {HTTP_BODY})")
    for r in http:
        print(
            f"   c={r.concurrency:<3} {r.ok_per_s:>7,.0f} req/s  p50 {_ms(r.p50_ms)}  "
            f"p99 {_ms(r.p99_ms)}  2xx {r.ok:,}  failed: {r.describe_failures()}"
        )


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def summary_rows(report: Report) -> list[tuple[str, str, str]]:
    """(figure, measured, target) rows of the summary table."""
    raw = report.raw
    rates = " / ".join(f"{r / 1000:.0f}k" for r in raw.rows_per_s.values())
    rows = [
        (f"raw rows/s, batch {' / '.join(map(str, raw.rows_per_s))}", rates, ""),
        ("raw batch-1 p50", f"{raw.batch1_p50_ms:.3f} ms", ""),
    ]
    rows += [
        (f"drain, max_batch_rows={d.max_batch_rows}", f"{d.jobs_per_s:,.0f} jobs/s", "")
        for d in report.drains
    ]
    ratio = report.drain_ratio
    rows.append(
        (
            "drain ratio, batched / max_batch_rows=1",
            f"{ratio:.1f}x",
            f">= {TARGET_DRAIN_RATIO:g}x: {_verdict(ratio >= TARGET_DRAIN_RATIO)}",
        )
    )
    rows += [
        (
            f"HTTP c={r.concurrency}",
            f"{r.ok_per_s:,.0f} req/s, p50 {_ms(r.p50_ms)}, p99 {_ms(r.p99_ms)}",
            f"failed: {r.describe_failures()}",
        )
        for r in report.http
    ]
    added = report.added_p50_ms
    if added is None:
        rows.append(("added p50 at c=1 (HTTP - raw)", "skipped (no hey)", ""))
    else:
        rows.append(
            (
                "added p50 at c=1 (HTTP - raw)",
                f"{added:.2f} ms",
                f"<= {TARGET_ADDED_P50_MS:g} ms: {_verdict(added <= TARGET_ADDED_P50_MS)}",
            )
        )
    rows.append((*PEER, "same model, for scale"))
    return rows


def print_summary(report: Report) -> None:
    rows = [("figure", "measured", "target"), *summary_rows(report)]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    print("\nsummary")
    for figure, measured, target in rows:
        print(f"  {figure:<{widths[0]}}  {measured:<{widths[1]}}  {target}".rstrip())


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return {
        "cpus": os.cpu_count(),
        "cpu": models[0] if models else platform.processor(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
    }


def write_json(report: Report) -> None:
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": machine(),
        "raw": asdict(report.raw),
        "drain": [asdict(d) for d in report.drains],
        "drain_ratio": report.drain_ratio,
        "http": [asdict(r) for r in report.http],
        "added_p50_ms": report.added_p50_ms,
        "targets": {"added_p50_ms_max": TARGET_ADDED_P50_MS, "drain_ratio_min": TARGET_DRAIN_RATIO},
    }
    OUT_JSON.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {OUT_JSON.relative_to(ROOT)}")


def run(tmp: Path, hey: str | None) -> Report:
    """All three measurements, printed as they finish."""
    defaults = DefaultSettings()
    model_dir = export_model(tmp / "tiny-sampler")
    raw = bench_raw(
        model_dir / "model.onnx", [*RAW_BATCHES, defaults.max_batch_rows], worker_threads(defaults)
    )
    print_raw(raw)
    with private_hanmo(tmp, model_dir) as bench:
        drains = [drain_rate(bench, rows, DRAIN_JOBS) for rows in (defaults.max_batch_rows, 1)]
        print_drains(drains)
        report = Report(raw, drains)
        if hey is not None:
            report.http = bench_http(bench, hey)
            print_http(report.http)
    return report


def main() -> int:
    hey = find_hey()
    if hey is None:
        print(f"{INSTALL_HINT}\nthe HTTP figures (3.) are skipped.\n", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="hanmo-bench-") as tmp:
        report = run(Path(tmp), hey)
    print_summary(report)
    write_json(report)
    return 0 if hey is not None else 1


if __name__ == "__main__":
    sys.exit(main())
