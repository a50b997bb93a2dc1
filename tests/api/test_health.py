"""Liveness, readiness and metrics."""

from __future__ import annotations

from app.settings import Settings
from tests.helpers import live_api, worker_thread


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


def test_metrics_report_requests_queue_compute_and_batches(tiny: Settings) -> None:
    with worker_thread(tiny), live_api(tiny) as client:
        for seed in range(3):
            client.post("/v1/models/tiny-sampler/sample", json={"seed": seed})
        client.post("/v1/models/tiny-sampler/sample", json={"seed": -1})
        text = client.get("/metrics").text
    labels = 'alias="production",model="tiny-sampler",version="1"'
    assert f"hanmo_queue_wait_seconds_count{{{labels}}} 3.0" in text
    assert f"hanmo_compute_seconds_count{{{labels}}} 3.0" in text
    assert f"hanmo_batch_rows_count{{{labels}}} 3.0" in text
    assert 'hanmo_requests_total{route="/v1/models/{name}/sample",status="200"} 3.0' in text
    assert 'hanmo_requests_total{route="/v1/models/{name}/sample",status="422"} 1.0' in text
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
