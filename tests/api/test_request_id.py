"""Every request has an id (`X-Request-Id`: the client's when well formed, else a new one): in
the response's headers, in its problem documents, on each of its log lines (the worker's for
its job included), and one access line per request (HANMO_ACCESS_LOG)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from app.api.access import request_id
from app.api.main import create_app
from app.logs import Formatter, RequestIdFilter
from app.settings import Settings
from tests.helpers import live_api, worker_thread

SAMPLE = "/v1/models/tiny-sampler/sample"
HEX_ID = re.compile(r"[0-9a-f]{32}")


class Lines(logging.Handler):
    """The formatted lines hanmo's processes write (app/logs.py), kept in a list."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.addFilter(RequestIdFilter())
        self.setFormatter(Formatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def having(self, *parts: str) -> list[str]:
        return [line for line in self.lines if all(part in line for part in parts)]


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger()
    worker_log = logging.getLogger("hanmo.worker")
    levels = root.level, worker_log.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    worker_log.setLevel(logging.DEBUG)  # worker.batch_done is a debug line
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        worker_log.setLevel(levels[1])


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (b"order-7f3a.2026:12/07+x=1@a~b_c", True),
        (b"a" * 128, True),
        (b"a" * 129, False),
        (b"has space", False),
        (b"new\nline", False),
        (b"", False),
    ],
)
def test_a_client_id_is_kept_only_when_well_formed(sent: bytes, kept: bool) -> None:
    got = request_id({"headers": [(b"accept", b"*/*"), (b"x-request-id", sent)]})
    assert (got == sent.decode()) is kept
    if not kept:
        assert HEX_ID.fullmatch(got)


def test_the_id_is_echoed_logged_and_reaches_the_worker(tiny: Settings, lines: Lines) -> None:
    with live_api(tiny) as client, worker_thread(tiny):
        given = client.post(SAMPLE, json={"seed": 1}, headers={"X-Request-Id": "order-42"})
        made = client.post(SAMPLE, json={"seed": 2})
    assert given.status_code == 200, given.text
    assert given.headers["x-request-id"] == "order-42"
    assert made.status_code == 200
    assert HEX_ID.fullmatch(made.headers["x-request-id"])
    for rid in ("order-42", made.headers["x-request-id"]):
        access = lines.having("hanmo.access http.request method=POST", f"request_id={rid}")
        assert len(access) == 1, lines.lines
        assert re.search(
            r"route=/v1/models/\{name\}/sample status=200 duration_ms=\d+\.\d{3} bytes=[1-9]\d*",
            access[0],
        ), access[0]
        # the worker's line for the batch that ran the job carries the request's id
        assert lines.having("worker.batch_done", f"request_id={rid}"), lines.lines


def test_problem_documents_carry_the_request_id(tiny: Settings) -> None:
    with live_api(tiny) as client:
        invalid = client.post(SAMPLE, json={"n": 0}, headers={"X-Request-Id": "bad-body"})
        unknown = client.post("/v1/models/nope/sample", json={})
        missing = client.get("/no/such/page")
    assert invalid.status_code == 422
    assert invalid.json()["request_id"] == "bad-body" == invalid.headers["x-request-id"]
    for answer in (unknown, missing):
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["request_id"] == answer.headers["x-request-id"]
        assert HEX_ID.fullmatch(answer.headers["x-request-id"])


def test_access_log_off(tiny: Settings, lines: Lines) -> None:
    quiet = tiny.model_copy(update={"access_log": False})
    with live_api(quiet) as client:
        answer = client.get("/livez", headers={"X-Request-Id": "quiet-1"})
    assert answer.headers["x-request-id"] == "quiet-1"
    assert not lines.having("hanmo.access")


def test_an_unexpected_error_still_answers_with_the_id(settings: Settings) -> None:
    app = create_app(settings)

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/boom", headers={"X-Request-Id": "bug-1"})
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "bug-1"
    assert answer.json()["request_id"] == "bug-1"
    assert "Traceback" not in answer.text
