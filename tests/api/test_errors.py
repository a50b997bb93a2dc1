"""Bad input gets a clear problem+json answer and changes nothing; never a 500."""

from __future__ import annotations

import httpx
import pytest

from app.queue import keys
from app.redis_conn import sync_client
from app.settings import Settings
from tests.helpers import live_api

PROBLEM = "application/problem+json"
SAMPLE = "/v1/models/tiny-sampler/sample"


def assert_problem(response: httpx.Response, status: int) -> dict:  # type: ignore[type-arg]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert "detail" in body
    assert "Traceback" not in response.text
    return body


def queued_jobs(settings: Settings) -> int:
    return int(sync_client(settings.redis_url).xlen(keys.stream("tiny-sampler", 1)))


def test_malformed_json_is_422(tiny: Settings) -> None:
    with live_api(tiny) as client:
        response = client.post(
            SAMPLE, content=b'{"n": 1,', headers={"content-type": "application/json"}
        )
    assert_problem(response, 422)
    assert queued_jobs(tiny) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"n": "three"}, "body.n"),
        ({"n": 0}, "body.n"),
        ({"n": 1025}, "body.n"),
        ({"seed": -1}, "body.seed"),
        ({"seed": 1.5}, "body.seed"),
        ({"seed": "7"}, "body.seed"),
        ({"temperature": 0}, "body.temperature"),
        ({"temperature": 2.5}, "body.temperature"),
        ({"format": "jpeg"}, "body.format"),
        ({"version": 0}, "body.version"),
        ({"alias": "../x"}, "body.alias"),
        ({"timeout_ms": 0}, "body.timeout_ms"),
        ({"unknown": 1}, "body.unknown"),
    ],
)
def test_wrong_types_are_422_naming_the_field(tiny: Settings, body: dict, field: str) -> None:  # type: ignore[type-arg]
    with live_api(tiny) as client:
        problem = assert_problem(client.post(SAMPLE, json=body), 422)
    assert field in {e["field"] for e in problem["errors"]}
    assert field in problem["detail"]
    assert queued_jobs(tiny) == 0


def test_labels_on_unconditional_model_is_422(tiny: Settings) -> None:
    with live_api(tiny) as client:
        problem = assert_problem(client.post(SAMPLE, json={"labels": 3}), 422)
    assert "unconditional" in problem["detail"]
    assert queued_jobs(tiny) == 0


def test_body_over_limit_is_413(tiny: Settings) -> None:
    tiny.max_body_bytes = 2048
    with live_api(tiny) as client:
        declared = client.post(
            SAMPLE, content=b"{" + b" " * 4096 + b"}", headers={"content-type": "application/json"}
        )
        chunked = client.post(
            SAMPLE,
            content=iter([b"{", b" " * 4096, b"}"]),
            headers={"content-type": "application/json"},
        )
    assert_problem(declared, 413)
    assert_problem(chunked, 413)
    assert queued_jobs(tiny) == 0


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/models/no-such-model/sample", {}),
        ("POST", SAMPLE, {"alias": "staging"}),
        ("POST", SAMPLE, {"version": 9}),
        ("GET", "/v1/models/no-such-model", None),
        ("GET", "/v1/jobs/0123456789abcdef01234567", None),
        ("DELETE", "/v1/jobs/0123456789abcdef01234567", None),
        ("GET", "/v1/nothing-here", None),
    ],
)
def test_unknown_things_are_404(tiny: Settings, method: str, path: str, body: object) -> None:
    with live_api(tiny) as client:
        assert_problem(client.request(method, path, json=body), 404)


def test_malformed_job_id_is_422(tiny: Settings) -> None:
    with live_api(tiny) as client:
        assert_problem(client.get("/v1/jobs/not-a-job"), 422)


def test_full_queue_is_429_with_retry_after(tiny: Settings) -> None:
    tiny.max_queue_depth = 3
    with live_api(tiny) as client:  # no worker: the queue only fills
        accepted = [
            client.post(SAMPLE, json={"seed": i}, headers={"Prefer": "respond-async"})
            for i in range(3)
        ]
        refused = client.post(SAMPLE, json={"seed": 9}, headers={"Prefer": "respond-async"})
    assert [r.status_code for r in accepted] == [202, 202, 202]
    problem = assert_problem(refused, 429)
    assert refused.headers["retry-after"] == "1"
    assert problem["retry_after_s"] == 1
    assert queued_jobs(tiny) == 3
