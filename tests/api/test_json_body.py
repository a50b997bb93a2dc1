"""JSON bodies are bounded in depth and values before anything parses them: a clear 422
problem, never a 500 or a logged traceback (issue 46, "Edges")."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi.routing import APIRoute
from hanmo_client.schemas import MAX_LEVELS, MAX_PREDICT_ROWS, MAX_ROW_WIDTH

from app.api.json_body import MAX_JSON_DEPTH, MAX_JSON_VALUES, JsonLimitedRoute, shape
from app.api.main import create_app
from app.settings import Settings
from tests.api.test_admin import new_key
from tests.helpers import live_api

PROBLEM = "application/problem+json"
BODY_ROUTES = (
    "/v1/models/tiny-sampler/style-transfer",
    "/v1/styles",
    "/v1/models/tiny-sampler/sample",
    "/v1/models/tiny-sampler/predict",
    "/v1/models/tiny-sampler/feedback",
    "/admin/models",
    "/admin/models/tiny-sampler/versions",
)


def nested(depth: int) -> bytes:
    return b'{"text": "x", "references": ' + b"[" * depth + b"]" * depth + b"}"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def logged_errors() -> Iterator[list[logging.LogRecord]]:
    """ERROR records of the live api: hanmo's (through the root logger) and uvicorn's own
    ("Exception in ASGI application"), whose logger does not propagate to the root."""
    handler = Records()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def test_shape_counts_brackets_and_commas_outside_strings_only() -> None:
    depth, values = shape(b'{"a": "[[[{,,,\\"]]", "b": [1, [2, {}]]}')
    assert depth == 4
    assert 7 <= values <= 8  # an upper bound: an empty container counts as a value inside it


def test_depth_is_refused_past_the_limit_not_at_it() -> None:
    assert shape(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)[0] == MAX_JSON_DEPTH
    assert shape(nested(MAX_JSON_DEPTH))[0] == MAX_JSON_DEPTH + 1


def test_the_largest_predict_body_is_within_the_limits() -> None:
    row = b"[" + b",".join([b"0"] * MAX_ROW_WIDTH) + b"]"
    levels = b",".join([b"0.5"] * MAX_LEVELS)
    body = (
        b'{"inputs": [' + b",".join([row] * MAX_PREDICT_ROWS) + b"], "
        b'"interval": [' + levels + b'], "draws": 8, "return_draws": true, '
        b'"alias": "production", "version": null, "timeout_ms": 1000, "routing_key": "k"}'
    )
    depth, values = shape(body)
    assert depth == 3
    assert values <= MAX_JSON_VALUES


def test_every_route_that_takes_a_body_checks_it() -> None:
    unchecked = [
        route.path
        for route in create_app(Settings()).routes
        if isinstance(route, APIRoute)
        and route.methods & {"POST", "PUT", "PATCH"}
        and not isinstance(route, JsonLimitedRoute)
    ]
    assert unchecked == []


def test_json_nested_2000_deep_is_422_on_every_body_route_and_logs_nothing(
    tiny: Settings,
) -> None:
    admin = {"Authorization": f"Bearer {new_key(tiny, 'admin')}"}
    json = {"content-type": "application/json", **admin}
    with live_api(tiny) as client, logged_errors() as errors:
        answers = {
            path: client.post(path, content=nested(2000), headers=json) for path in BODY_ROUTES
        }
        bare = client.post(BODY_ROUTES[0], content=b"[" * 2000 + b"]" * 2000, headers=admin)
    for path, response in [*answers.items(), (BODY_ROUTES[0], bare)]:
        assert response.status_code == 422, (path, response.status_code, response.text[:200])
        assert response.headers["content-type"] == PROBLEM
        assert f"at most {MAX_JSON_DEPTH}" in response.json()["detail"]
    assert [r.getMessage() for r in errors] == []


def test_a_json_body_over_the_value_limit_is_refused_under_admin_byte_limits(
    tiny: Settings,
) -> None:
    admin = {"Authorization": f"Bearer {new_key(tiny, 'admin')}"}
    body = b"[" + b"0," * MAX_JSON_VALUES + b"0]"  # 32 MiB: only /admin's byte limit allows it
    with live_api(tiny) as client:
        response = client.post(
            "/admin/models",
            content=body,
            headers={"content-type": "application/json", **admin},
            timeout=httpx.Timeout(120),
        )
    assert response.status_code == 422, response.text[:200]
    assert response.headers["content-type"] == PROBLEM
    assert f"more than {MAX_JSON_VALUES:,} values" in response.json()["detail"]
