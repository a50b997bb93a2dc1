"""The api's /metrics by Prometheus' conventions, with one process and with several: a scrape
of `hanmo api --workers 2` shows the whole api whichever process answers it."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.settings import Settings
from tests.deploy.test_worker_metrics import samples
from tests.helpers import api_ready, free_port, live_api, wait_until
from tests.worker.processes import ApiProcess, descendants, worker_processes

SAMPLE = "/v1/models/tiny-sampler/sample"
HTTP = "hanmo_http_request_duration_seconds"


def test_metrics_follow_prometheus_conventions(tiny: Settings) -> None:
    with live_api(tiny) as client:
        client.get("/livez")
        client.get("/no-such-page")
        client.request("TRACE", "/livez")  # any method hanmo never serves is one label value
        text = client.get("/metrics").text
    found = samples(text)
    assert found[f'{HTTP}_count{{method="GET",route="/livez",status="200"}}'] == 1
    assert found[f'{HTTP}_count{{method="GET",route="unmatched",status="404"}}'] == 1
    assert found[f'{HTTP}_count{{method="OTHER",route="/livez",status="405"}}'] == 1
    assert f'{HTTP}_bucket{{le="0.005",method="GET",route="/livez",status="200"}}' in found
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for family in families.values():  # counters' samples end in _total; nothing is _created
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), family.name
        assert not any(s.name.endswith("_created") for s in family.samples), family.name
    # the process, platform and GC collectors are on the registry
    assert found["process_resident_memory_bytes"] > 0
    assert "process_cpu_seconds_total" in found
    assert any(name.startswith("python_info{") for name in found)
    assert any(name.startswith("python_gc_collections_total{") for name in found)


def test_two_api_processes_are_one_view_on_every_scrape(tiny: Settings) -> None:
    """20 requests over fresh connections (the kernel picks a process for each), then scrapes
    over fresh connections: every scrape counts all 20, and the scrapes before it, whichever
    process answers; each process's own process metrics carry its pid; the queue gauges come
    once. The metrics directory is removed when the api stops."""
    settings = tiny.model_copy(update={"port": free_port()})
    base = f"http://127.0.0.1:{settings.port}"
    api = ApiProcess(settings, workers=2)
    pages = []
    try:
        with worker_processes(settings, 1) as (worker,):
            worker.log.wait_for("worker.loaded version=tiny-sampler:1")
            wait_until(lambda: api_ready(base), timeout_s=120, awaiting="the api to be ready")
            processes = [p for p in descendants(api.popen.pid) if "spawn_main" in p.command]
            directory = _metrics_dir(processes[0].pid)
            for seed in range(20):
                with httpx.Client(base_url=base, timeout=30) as http:
                    assert http.post(SAMPLE, json={"seed": seed}).status_code == 200
            for _ in range(6):
                with httpx.Client(base_url=base, timeout=30) as http:
                    pages.append(http.get("/metrics").text)
    finally:
        api.stop()
    assert len(processes) == 2, processes
    assert not directory.exists()  # removed by the CLI once uvicorn stopped
    post = f'{HTTP}_count{{method="POST",route="/v1/models/{{name}}/sample",status="200"}}'
    scrape = f'{HTTP}_count{{method="GET",route="/metrics",status="200"}}'
    for earlier, text in enumerate(pages):
        found = samples(text)
        assert found[post] == 20
        assert found.get(scrape, 0) == earlier  # a scrape is counted once it has answered
        pids = {k.split('pid="')[1].split('"')[0] for k in found if k.startswith("process_r")}
        assert pids == {str(p.pid) for p in processes}
        assert text.count('\nhanmo_queue_depth{model="tiny-sampler",version="1"}') == 1
        assert not any(name.endswith("_created") for name in found)


def _metrics_dir(pid: int) -> Path:
    """The PROMETHEUS_MULTIPROC_DIR an api process was started with."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    (value,) = [v for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    path = Path(value.split(b"=", 1)[1].decode())
    assert path.is_dir()
    return path
