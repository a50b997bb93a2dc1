"""Liveness, readiness and metrics."""

from __future__ import annotations

from app.settings import Settings
from tests.helpers import live_api, wait_until, worker_thread


def test_readyz_needs_a_live_worker_for_each_aliased_version(tiny: Settings) -> None:
    with live_api(tiny) as client:
        assert client.get("/livez").json() == {"status": "ok"}
        waiting = client.get("/readyz")
        with worker_thread(tiny):
            ready = client.get("/readyz")
    assert waiting.status_code == 503
    assert waiting.headers["content-type"] == "application/problem+json"
    assert waiting.json()["checks"]["versions_without_worker"] == ["tiny-sampler:1"]
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_metrics_count_each_job_once_with_its_labels(tiny: Settings) -> None:
    sample = "/v1/models/tiny-sampler/sample"
    with live_api(tiny) as client:
        # no worker yet: 503 at once (before issue 46, 504 at its deadline), nothing queued
        late = client.post(sample, json={"seed": 9, "timeout_ms": 50})
        with worker_thread(tiny):
            for seed in range(3):
                client.post(sample, json={"seed": seed})
            client.post(sample, json={"seed": -1})
            job = client.post(
                sample, json={"seed": 5, "version": 1}, headers={"Prefer": "respond-async"}
            ).json()
            wait_until(lambda: client.get(job["href"]).json()["status"] == "done")
            for _ in range(3):
                client.get(job["href"])  # polling does not count the job again
            text = client.get("/metrics").text
    assert late.status_code == 503
    labels = 'alias="production",model="tiny-sampler",version="1"'
    pinned = 'alias="",model="tiny-sampler",version="1"'
    for name in ("queue_wait_seconds", "compute_seconds", "batch_rows"):
        assert f"hanmo_{name}_count{{{labels}}} 3.0" in text
        assert f"hanmo_{name}_count{{{pinned}}} 1.0" in text
    assert 'hanmo_failures_total{model="tiny-sampler",reason="no-worker"} 1.0' in text
    assert 'reason="deadline-exceeded"' not in text
    requests = (
        'hanmo_http_request_duration_seconds_count{method="POST",route="/v1/models/{name}/sample"'
    )
    assert f'{requests},status="200"}} 3.0' in text
    assert f'{requests},status="422"}} 1.0' in text
    assert 'hanmo_queue_depth{model="tiny-sampler",version="1"} 0.0' in text


def test_models_list_and_detail(tiny: Settings) -> None:
    with live_api(tiny) as client:
        listing = client.get("/v1/models").json()["models"]
        detail = client.get("/v1/models/tiny-sampler").json()
    assert [m["name"] for m in listing] == ["tiny-sampler"]
    assert detail["aliases"] == {"production": 1}
    version = detail["versions"][0]
    assert version["status"] == "READY"
    assert version["signature"]["z_dim"] == 16
    assert version["card"]["kind"] == "sampler"
