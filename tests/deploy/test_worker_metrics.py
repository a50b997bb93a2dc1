"""Workers serve Prometheus metrics (what the worker ServiceMonitor scrapes): counters of the
batches they ran, the versions they hold; each slot of a pool on its own port."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from prometheus_client import generate_latest

from app.settings import Settings
from app.worker.main import Worker
from app.worker.metrics import PORT_ENV, configured_port, serve
from tests.helpers import free_port, live_api, wait_until, worker_thread
from tests.worker.processes import WorkerProcess

SAMPLE = "/v1/models/tiny-sampler/sample"
VERSION = 'model="tiny-sampler",version="1"'


def samples(text: str) -> dict[str, float]:
    """The exposition's sample lines: `name{labels}` -> value."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def test_worker_metrics_count_the_batches_it_ran(tiny: Settings) -> None:
    with live_api(tiny) as client, worker_thread(tiny) as worker:
        server = serve(worker.metrics.registry, 0, "127.0.0.1")
        try:
            url = f"http://127.0.0.1:{server.server_port}/metrics"
            before = samples(httpx.get(url).text)
            for seed, n in ((1, 3), (2, 5)):
                assert client.post(SAMPLE, json={"seed": seed, "n": n}).status_code == 200
            after = samples(httpx.get(url).text)
        finally:
            server.shutdown()
            server.server_close()
    assert f"hanmo_worker_batches_total{{{VERSION}}}" not in before  # none ran yet
    loaded = 'model="tiny-sampler",provider="CPUExecutionProvider",version="1"'
    assert before[f"hanmo_worker_loaded_versions{{{loaded}}}"] == 1
    assert before["hanmo_worker_long_jobs"] == 0
    assert before[f'hanmo_worker_info{{device="cpu",worker="{worker.id}"}}'] == 1
    assert after[f"hanmo_worker_batches_total{{{VERSION}}}"] == 2  # one request a batch
    assert after[f"hanmo_worker_rows_total{{{VERSION}}}"] == 8
    assert after[f"hanmo_worker_compute_seconds_count{{{VERSION}}}"] == 2
    assert after[f"hanmo_worker_compute_seconds_sum{{{VERSION}}}"] > 0
    assert after[f'hanmo_worker_batch_rows_bucket{{le="4.0",{VERSION}}}'] == 1  # 3 rows
    assert after[f'hanmo_worker_batch_rows_bucket{{le="8.0",{VERSION}}}'] == 2  # and 5
    assert after[f"hanmo_worker_queue_wait_seconds_count{{{VERSION}}}"] == 2  # one job a batch
    assert after["hanmo_worker_busy_seconds_total"] > before["hanmo_worker_busy_seconds_total"]
    assert after["process_resident_memory_bytes"] > 0  # process metrics are kept
    assert not any(name.endswith("_created") for name in after)


def test_worker_counts_failures_by_reason_and_the_wait_of_jobs_it_ran(tiny: Settings) -> None:
    """Jobs queued while no worker runs, two with a deadline that passes in the queue: the
    worker answers those with deadline-exceeded and runs the third."""
    with live_api(tiny) as client:
        short = {"seed": 1, "timeout_ms": 50}
        for body in (short, short, {"seed": 2}):
            accepted = client.post(SAMPLE, json=body, headers={"Prefer": "respond-async"})
            assert accepted.status_code == 202
        time.sleep(0.2)  # the short deadlines pass
        with worker_thread(tiny) as worker:
            wait_until(
                lambda: f"hanmo_worker_batches_total{{{VERSION}}}" in page(worker),
                awaiting="the worker to run the third job",
            )
            found = page(worker)
    failed = 'model="tiny-sampler",reason="deadline-exceeded",version="1"'
    assert found[f"hanmo_worker_failures_total{{{failed}}}"] == 2
    assert found[f"hanmo_worker_queue_wait_seconds_count{{{VERSION}}}"] == 1
    assert found[f"hanmo_worker_queue_wait_seconds_sum{{{VERSION}}}"] >= 0.2


def page(worker: Worker) -> dict[str, float]:
    """The worker's metrics as its endpoint would render them."""
    return samples(generate_latest(worker.metrics.registry).decode())


def test_metrics_port_is_the_setting_plus_the_slot_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PORT_ENV, raising=False)
    assert configured_port(0, Settings().worker_metrics_port) is None  # off unless asked for
    monkeypatch.setenv(PORT_ENV, "9100")
    assert [configured_port(i, Settings().worker_metrics_port) for i in range(3)] == [
        9100,
        9101,
        9102,
    ]


def two_free_ports() -> int:
    """A port p such that p and p + 1 are both free now."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two consecutive free ports")


def test_each_slot_of_a_worker_pool_serves_metrics_on_its_own_port(
    tiny: Settings,
) -> None:
    """`hanmo worker --replicas 2` with HANMO_WORKER_METRICS_PORT=p: slot 0 on p, slot 1 on
    p + 1, each its own process with the model loaded."""
    port = two_free_ports()
    worker = WorkerProcess(tiny.model_copy(update={"worker_metrics_port": port}), "--replicas", "2")
    try:
        worker.log.wait_for("worker.metrics port=", count=2)
        pages = {}
        for slot in (0, 1):
            url = f"http://127.0.0.1:{port + slot}/metrics"

            def loaded(url: str = url, slot: int = slot) -> bool:
                pages[slot] = samples(httpx.get(url).text)
                return any(k.startswith("hanmo_worker_loaded_versions{") for k in pages[slot])

            wait_until(loaded, timeout_s=120, awaiting=f"slot {slot} to load the model")
    finally:
        worker.stop()
    ids = {
        key.split('worker="')[1].rstrip('"}')
        for page in pages.values()
        for key in page
        if key.startswith("hanmo_worker_info{")
    }
    assert len(ids) == 2  # two processes, two workers
    assert all(page["hanmo_worker_long_jobs"] == 0 for page in pages.values())
