"""When the client sends a refused request again, and after how long. Pure: the waits are
computed from the answer alone, and the sequences run on httpx.MockTransport (the real
server's refusals are in test_refusals.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate

import httpx
import pytest
from hanmo_client import ApiError, AsyncHanmo, Hanmo, Retry
from hanmo_client.retry import retry_after_s

PROBLEM = {"type": "https://hanmo.dev/problems/queue-full", "title": "Queue full"}
ALIAS = {
    "model": "m", "alias": "production", "version": 1, "canary": None, "canary_weight": 0.0,
    "pending": None, "state": "ready", "last_error": "", "updated_at": "2026-12-07T00:00:00",
}  # fmt: skip
SAMPLE = {
    "job_id": "0" * 24, "op": "sample", "model": "m", "version": 1, "alias": "production",
    "sha256": "0" * 64, "seed": 1, "n": 1, "temperature": 1.0, "labels": None, "format": "array",
    "sample_shape": [1], "runtime": "onnxruntime", "provider": "CPUExecutionProvider",
    "deterministic": True, "samples": [[0.5]],
}  # fmt: skip


def refusal(
    status: int, headers: dict[str, str] | None = None, **problem: object
) -> httpx.Response:
    body = {**PROBLEM, "status": status, **problem}
    return httpx.Response(status, json=body, headers=headers)


def test_the_wait_is_what_the_server_asked_for() -> None:
    retry = Retry(max_retries=3, backoff_s=0.5, max_backoff_s=30)
    assert retry.delay_s(0, refusal(429, {"Retry-After": "2"})) == 2
    assert retry.delay_s(0, refusal(503, retry_after_s=4)) == 4  # the problem's, no header
    assert retry.delay_s(0, refusal(429, {"Retry-After": "3"}, retry_after_s=9)) == 3
    later = formatdate(time.time() + 5, usegmt=True)
    dated = retry.delay_s(0, refusal(503, {"Retry-After": later}))
    assert dated is not None
    assert 3.5 < dated <= 5


def test_without_retry_after_the_wait_doubles_up_to_its_cap() -> None:
    retry = Retry(max_retries=10, backoff_s=0.5, max_backoff_s=3)
    waits = [retry.delay_s(attempt, refusal(503)) for attempt in range(5)]
    assert waits == [0.5, 1.0, 2.0, 3, 3]


def test_tries_are_bounded_and_a_longer_retry_after_is_not_waited_out() -> None:
    assert Retry(max_retries=2).delay_s(2, refusal(503)) is None
    assert Retry(max_retries=0).delay_s(0, refusal(429, {"Retry-After": "1"})) is None
    assert Retry(max_backoff_s=10).delay_s(0, refusal(429, {"Retry-After": "60"})) is None
    assert retry_after_s(refusal(429, {"Retry-After": "soon"}), now_s=0) is None
    with pytest.raises(ValueError, match=">= 0"):
        Retry(max_retries=-1)


def scripted(*answers: httpx.Response) -> tuple[list[httpx.Request], Callable[..., httpx.Response]]:
    """A handler that gives `answers` in turn, and the requests it was sent."""
    sent: list[httpx.Request] = []
    queue: Iterator[httpx.Response] = iter(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return next(queue)

    return sent, handle


def test_refusals_that_did_not_run_are_sent_again_until_answered() -> None:
    sent, handle = scripted(
        refusal(503), refusal(429, {"Retry-After": "0"}), httpx.Response(200, json=SAMPLE)
    )
    with Hanmo("http://hanmo", transport=httpx.MockTransport(handle), backoff_s=0.001) as hanmo:
        answer = hanmo.sample("m", seed=1)
    assert answer.samples == [[0.5]]
    assert [r.url.path for r in sent] == ["/v1/models/m/sample"] * 3
    body = {"n": 1, "seed": 1, "temperature": 1.0, "format": "png"}  # the same each try
    assert [json.loads(r.content) for r in sent] == [body] * 3


@pytest.mark.parametrize("status", [400, 404, 409, 422, 500, 504])
def test_other_refusals_are_not_sent_again(status: int) -> None:
    sent, handle = scripted(refusal(status, detail="no"))
    with Hanmo("http://hanmo", transport=httpx.MockTransport(handle)) as hanmo:
        with pytest.raises(ApiError) as raised:
            hanmo.sample("m")
    assert (raised.value.status, raised.value.detail, len(sent)) == (status, "no", 1)


def test_retries_give_up_with_the_last_refusal() -> None:
    sent, handle = scripted(*[refusal(503, detail=f"try {i}") for i in range(4)])
    with Hanmo(
        "http://hanmo", transport=httpx.MockTransport(handle), max_retries=2, backoff_s=0.001
    ) as hanmo:
        with pytest.raises(ApiError) as raised:
            hanmo.sample("m")
    assert (len(sent), raised.value.detail) == (3, "try 2")


def test_a_registry_change_is_retried_on_429_but_not_on_503() -> None:
    sent, handle = scripted(
        refusal(503), refusal(429, {"Retry-After": "0"}), httpx.Response(200, json=ALIAS)
    )
    with Hanmo("http://hanmo", transport=httpx.MockTransport(handle), backoff_s=0.001) as hanmo:
        with pytest.raises(ApiError) as first:
            hanmo.admin.rollback("m", "production")
        second = hanmo.admin.rollback("m", "production")
    assert first.value.status == 503
    assert (second.version, len(sent)) == (1, 3)


def test_a_body_that_is_not_a_problem_document_still_makes_an_api_error() -> None:
    _, handle = scripted(httpx.Response(502, text="<html>bad gateway</html>"))
    with Hanmo("http://hanmo", transport=httpx.MockTransport(handle)) as hanmo:
        with pytest.raises(ApiError) as raised:
            hanmo.models()
    assert (raised.value.status, raised.value.title) == (502, "Bad Gateway")
    assert raised.value.detail == "<html>bad gateway</html>"


def test_the_async_client_retries_the_same_way() -> None:
    sent, handle = scripted(refusal(429, {"Retry-After": "0"}), httpx.Response(200, json=SAMPLE))

    async def run() -> list[list[float]]:
        async with AsyncHanmo(
            "http://hanmo", transport=httpx.MockTransport(handle), backoff_s=0.001
        ) as hanmo:
            return (await hanmo.sample("m", seed=1)).samples or []

    assert asyncio.run(run()) == [[0.5]]
    assert len(sent) == 2
