"""The `autoregressive` kind end to end (issue 50, item 4): a tiny masked-linear step graph
(tests/ar_models.py) registered, a real worker thread, a live uvicorn, real Redis and ONNX
Runtime. Samples against a pure NumPy + ONNX Runtime reference loop, prefixes, labels,
temperature, the PNG grid, the exact log-likelihood, bad inputs, rows streamed as
Server-Sent Events (POST and a job's events), and the contract check (causality)."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from hanmo_client.schemas import SampleResponse

from app.errors import ContractViolation
from app.registry.cards import parse_card
from app.runtime.models import check_artifact
from app.services.registration import register_directory
from app.settings import Settings
from tests.api.test_job_events import read_events
from tests.api.test_style_events import parse_events
from tests.ar_models import save_ar
from tests.helpers import live_api, slow_sampler, worker_thread

URL = "/v1/models/tiny-ar/sample"
P, V, W = 64, 17, 8
STREAM = {"Accept": "text/event-stream"}


@pytest.fixture(scope="module")
def ar_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_ar(tmp_path_factory.mktemp("ar") / "tiny-ar")


@pytest.fixture(scope="module")
def cond_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_ar(tmp_path_factory.mktemp("ar") / "cond-ar", name="cond-ar", classes=3, seed=1)


@pytest.fixture
def served(settings: Settings, ar_dir: Path, cond_dir: Path) -> Settings:
    register_directory(settings, ar_dir, "production")
    register_directory(settings, cond_dir, "production")
    return settings


def uniforms(seed: int, n: int) -> np.ndarray:
    """The contract's uniforms, written out: word t of Philox4x64-10 keyed by (seed, i)."""
    words = np.stack(
        [np.random.Philox(key=np.array([seed, i], np.uint64)).random_raw(P) for i in range(n)]
    )
    return ((words >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53


def reference(
    directory: Path,
    seed: int,
    n: int,
    prefix: list[int] | None = None,
    temperature: float = 1.0,
    label: int | None = None,
) -> np.ndarray:
    """Levels [n, P] sampled by a plain loop over the step graph, one request alone."""
    session = ort.InferenceSession(str(directory / "step.onnx"), providers=["CPUExecutionProvider"])
    u = uniforms(seed, n)
    x = np.zeros((n, P), np.int64)
    start = len(prefix or [])
    x[:, :start] = prefix or []
    feeds: dict[str, np.ndarray] = {}
    if label is not None:
        feeds["label"] = np.full(n, label, np.int64)
    for t in range(start, P):
        logits = session.run(None, {"x": x, **feeds})[0][:, t].astype(np.float64) / temperature
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        cdf = np.cumsum(p, axis=1) / p.sum(axis=1, keepdims=True)
        x[:, t] = np.minimum((cdf <= u[:, t : t + 1]).sum(axis=1), V - 1)
    return x


def levels(body: dict[str, Any]) -> np.ndarray:
    return np.asarray(body["levels"]).reshape(len(body["levels"]), P)


def test_samples_equal_the_reference_loop(served: Settings, ar_dir: Path) -> None:
    prefix = [[3] * W, [16, 0, 5]]
    flat = [v for row in prefix for v in row]
    with worker_thread(served), live_api(served) as client:
        plain = client.post(URL, json={"n": 3, "seed": 11, "format": "array"})
        warm = client.post(URL, json={"n": 2, "seed": 7, "temperature": 0.5, "prefix": prefix})
        again = client.post(URL, json={"n": 3, "seed": 11, "format": "array"})
        sheet = client.post(URL, json={"n": 3, "seed": 11}, headers={"Accept": "image/png"})
    assert plain.status_code == 200, plain.text
    body = plain.json()
    assert body["seed"] == 11
    assert body["n"] == 3
    assert body["op"] == "sample"
    assert body["sha256"] == plain.headers["X-Hanmo-Sha256"]
    assert body["version"] == 1
    assert np.array_equal(levels(body), reference(ar_dir, 11, 3))
    assert np.allclose(np.asarray(body["samples"]), levels(body).reshape(3, W, W) / (V - 1))
    assert again.json()["levels"] == body["levels"]
    parsed = SampleResponse.model_validate(body)  # what the Python client reads
    assert parsed.levels == body["levels"]
    assert (parsed.steps, parsed.prefix_length, parsed.vocabulary) == (P, 0, V)
    got = levels(warm.json())
    assert np.array_equal(got, reference(ar_dir, 7, 2, flat, temperature=0.5))
    assert (got[:, : len(flat)] == flat).all()
    assert warm.json()["prefix_length"] == 11
    assert warm.json()["steps"] == P - 11
    assert sheet.headers["content-type"] == "image/png"
    assert sheet.content.startswith(b"\x89PNG")


def test_labels_condition_a_conditional_model(served: Settings, cond_dir: Path) -> None:
    with worker_thread(served), live_api(served) as client:
        answers = [
            client.post("/v1/models/cond-ar/sample", json={"n": 2, "seed": 3, "labels": label})
            for label in (0, 2)
        ]
        missing = client.post("/v1/models/cond-ar/sample", json={"n": 2, "seed": 3})
    for label, answer in zip((0, 2), answers, strict=True):
        assert answer.status_code == 200, answer.text
        assert answer.json()["labels"] == [label, label]
        assert np.array_equal(levels(answer.json()), reference(cond_dir, 3, 2, label=label))
    assert answers[0].json()["levels"] != answers[1].json()["levels"]
    assert missing.status_code == 422


def test_log_prob_is_the_exact_likelihood(served: Settings, ar_dir: Path) -> None:
    rows = np.random.default_rng(0).integers(0, V, (4, P))
    with worker_thread(served), live_api(served) as client:
        answer = client.post("/v1/models/tiny-ar/log-prob", json={"rows": rows.tolist()})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    session = ort.InferenceSession(str(ar_dir / "step.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"x": rows.astype(np.int64)})[0].astype(np.float64)
    exact = []
    for row, lg in zip(rows, logits, strict=True):  # position by position, as a chain rule
        exact.append(sum(lg[p, row[p]] - np.log(np.exp(lg[p]).sum()) for p in range(P)))
    assert np.allclose(body["log_prob"], exact, rtol=1e-9, atol=1e-9)
    assert np.allclose(body["bits_per_dim"], -np.asarray(exact) / (P * math.log(2)))
    assert body["input_dim"] == P
    assert body["levels"] == V


BAD_INPUTS: list[tuple[str, dict[str, Any], str]] = [
    (URL, {"n": 65}, "n"),
    (URL, {"n": 0}, "n"),
    (URL, {"temperature": 0}, "temperature"),
    (URL, {"temperature": -1}, "temperature"),
    (URL, {"temperature": 1e9}, "temperature"),
    (URL, {"labels": 1}, "labels"),  # an unconditional model
    (URL, {"prefix": [[1] * 9]}, "prefix"),  # rows of 8 levels
    (URL, {"prefix": [[1] * 4, [1] * 8]}, "prefix"),  # only the last row may be short
    (URL, {"prefix": [[1] * 8] * 9}, "prefix"),  # 8 rows at most
    (URL, {"prefix": [[17]]}, "prefix"),  # levels 0..16
    (URL, {"prefix": [[-1]]}, "prefix"),
    (URL, {"prefix": [[2**70]]}, "prefix"),  # past int64: 422, not an overflow's 500
    (URL, {"prefix": []}, "prefix"),
    (URL, {"prefix": "3"}, "prefix"),
    ("/v1/models/cond-ar/sample", {"labels": 3}, "labels"),  # classes 0..2
    ("/v1/models/tiny-ar/log-prob", {"rows": [[0] * 63]}, "rows"),
    ("/v1/models/tiny-ar/log-prob", {"rows": [[0.5] * 64]}, "rows"),
    ("/v1/models/tiny-ar/log-prob", {"rows": [[17] * 64]}, "rows"),
]


def test_bad_inputs_are_422_problems(served: Settings, tmp_path: Path) -> None:
    register_directory(served, slow_sampler(tmp_path / "sampler", layers=1), "production")
    with live_api(served) as client:  # refused before any job: no worker needed
        answers = [(client.post(url, json=body), field) for url, body, field in BAD_INPUTS]
        on_sampler = client.post("/v1/models/slow-sampler/sample", json={"prefix": [[1]]})
    for answer, field in answers:
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert field in answer.text
    assert on_sampler.status_code == 422
    assert "prefix" in on_sampler.json()["detail"]


def test_rows_stream_as_server_sent_events(served: Settings, ar_dir: Path) -> None:
    prefix = [[5] * W, [6] * W, [7]]
    body = {"n": 4, "seed": 21, "prefix": prefix, "format": "array"}
    with worker_thread(served), live_api(served) as client:
        events: list[Any] = []
        with client.stream("POST", URL, json=body, headers=STREAM) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            parse_events(response.iter_lines(), events)
        job = client.post(URL, json=body, headers={"Prefer": "respond-async", **STREAM}).json()
        resumed = read_events(client, job["job_id"], last="3")
    assert [e[0] for e in events] == [*range(W), 1000]
    assert [e[1] for e in events] == ["row"] * W + ["done"]
    done = events[-1][2]
    want = reference(ar_dir, 21, 4, [5] * 8 + [6] * 8 + [7])
    assert np.array_equal(levels(done), want)
    rows = np.stack([np.asarray(e[2]["levels"]) for e in events[:-1]], axis=1)  # [n, H, W]
    assert np.array_equal(rows.reshape(4, P), want)
    assert [e[0] for e in resumed] == [4, 5, 6, 7, 1000]
    assert resumed[-1][2]["status"] == "done"
    assert resumed[-1][2]["levels"] == done["levels"]


def test_async_job_answers_like_the_sync_one(served: Settings) -> None:
    body = {"n": 2, "seed": 9, "format": "grid"}
    with worker_thread(served), live_api(served) as client:
        accepted = client.post(URL, json=body, headers={"Prefer": "respond-async"})
        sync = client.post(URL, json=body).json()
        events = read_events(client, accepted.json()["job_id"])
        result = client.get(accepted.headers["Location"]).json()
    assert accepted.status_code == 202
    assert events[-1][1] == "done"
    assert result["status"] == "done"
    assert result["result"]["levels"] == sync["levels"]
    assert base64.b64decode(sync["grid"]).startswith(b"\x89PNG")


def test_the_contract_check_refuses_a_graph_that_sees_ahead(tmp_path: Path) -> None:
    good = save_ar(tmp_path / "good")
    check_artifact(good, parse_card(json.loads((good / "card.json").read_text())))
    leaky = save_ar(tmp_path / "leaky", leak=True)
    with pytest.raises(ContractViolation, match="not causal"):
        check_artifact(leaky, parse_card(json.loads((leaky / "card.json").read_text())))
    wrong = save_ar(tmp_path / "wrong", vocabulary=17)
    card = json.loads((wrong / "card.json").read_text())
    card["signature"]["vocabulary"] = 16  # the graph gives 17 levels
    with pytest.raises(ContractViolation, match=r"\[N, P, V\]"):
        check_artifact(wrong, parse_card(card))


def test_kinds_lists_the_autoregressive_contract(settings: Settings) -> None:
    with live_api(settings) as client:
        kinds = client.get("/v1/kinds").json()
    found = {k["kind"]: k for k in kinds["kinds"]}["autoregressive"]
    assert [r["role"] for r in found["roles"]] == ["step"]
    assert {"shape", "vocabulary", "order", "classes"} <= set(
        found["signature_schema"]["properties"]
    )
