"""Real refusals from a live hanmo: a full queue and a rate limit answer 429 with Retry-After;
the client raises ApiError with the problem document, or waits and sends again."""

from __future__ import annotations

import time

import httpx
import pytest
from hanmo_client import ApiError, Hanmo
from hanmo_client.schemas import SampleRequest, SampleResponse

from app.settings import Settings
from tests.api.test_admin import new_key
from tests.helpers import live_api, worker_thread


class Recording(httpx.HTTPTransport):
    """The real transport, noting each answer's status (what a retry looked like)."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.statuses.append(response.status_code)
        return response


def test_a_full_queue_is_an_api_error_with_retry_after(tiny: Settings) -> None:
    tiny.max_queue_depth = 1
    with live_api(tiny) as http:  # no worker: the first job stays queued
        transport = Recording()
        with Hanmo(str(http.base_url), max_retries=0, transport=transport) as hanmo:
            hanmo.submit("/v1/models/tiny-sampler/sample", SampleRequest(seed=1))
            began = time.monotonic()
            with pytest.raises(ApiError) as raised:
                hanmo.sample("tiny-sampler", seed=2)
            waited_s = time.monotonic() - began
    refused = raised.value
    assert refused.status == 429
    assert refused.type == "https://hanmo.dev/problems/queue-full"
    assert refused.retry_after_s == 1
    assert transport.statuses == [202, 429]  # max_retries=0: sent once
    assert waited_s < 1


def test_a_rate_limited_request_is_sent_again_after_retry_after(tiny: Settings) -> None:
    tiny.rate_limit_per_s, tiny.rate_limit_burst = 1.0, 1
    key = new_key(tiny, "infer")
    with worker_thread(tiny), live_api(tiny) as http:
        transport = Recording()
        with Hanmo(str(http.base_url), api_key=key, transport=transport) as hanmo:
            first = hanmo.sample("tiny-sampler", seed=3)
            began = time.monotonic()
            second = hanmo.sample("tiny-sampler", seed=3)
            waited_s = time.monotonic() - began
    assert isinstance(second, SampleResponse)
    assert second.samples == first.samples
    assert transport.statuses[:2] == [200, 429]
    assert transport.statuses[-1] == 200
    assert waited_s >= 0.95  # Retry-After: 1
