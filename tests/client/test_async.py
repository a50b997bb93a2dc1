"""AsyncHanmo against a live hanmo: the same methods and typed answers as Hanmo, awaited,
and many requests in flight on one connection pool."""

from __future__ import annotations

import asyncio

import pytest
from hanmo_client import ApiError, AsyncHanmo, Hanmo
from hanmo_client.schemas import (
    ClassificationPrediction,
    RegressionPrediction,
    RegressionRow,
    SampleRequest,
    SampleResponse,
)

CONCRETE_ROW = [300.0, 50.0, 50.0, 180.0, 5.0, 950.0, 750.0, 28.0]


def test_async_answers_are_the_sync_answers(served: str) -> None:
    Predicted = RegressionPrediction | ClassificationPrediction

    async def run() -> tuple[list[SampleResponse], Predicted, SampleResponse]:
        async with AsyncHanmo(served) as hanmo:
            samples = await asyncio.gather(
                *(hanmo.sample("tiny-sampler", n=2, seed=s, format="array") for s in range(8))
            )
            predicted = await hanmo.predict("concrete-sghmc", inputs=[CONCRETE_ROW])
            accepted = await hanmo.submit("/v1/models/tiny-sampler/sample", SampleRequest(seed=3))
            finished = await hanmo.wait(accepted.job_id, timeout_s=30)
            return list(samples), predicted, finished.result_as(SampleResponse)

    samples, predicted, from_job = asyncio.run(run())
    with Hanmo(served) as hanmo:
        direct = [hanmo.sample("tiny-sampler", n=2, seed=s, format="array") for s in range(8)]
        again = hanmo.predict("concrete-sghmc", inputs=[CONCRETE_ROW])
        seeded = hanmo.sample("tiny-sampler", seed=3)
    assert [s.samples for s in samples] == [d.samples for d in direct]
    assert [s.seed for s in samples] == list(range(8))
    assert isinstance(predicted.predictions[0], RegressionRow)
    assert predicted.predictions == again.predictions
    assert from_job.samples == seeded.samples


def test_async_refusals_raise_api_error(served: str) -> None:
    async def run() -> None:
        async with AsyncHanmo(served) as hanmo:
            await hanmo.admin.list_keys()

    with pytest.raises(ApiError) as raised:
        asyncio.run(run())
    assert raised.value.status == 401  # the admin API needs an admin key
    assert raised.value.type == "https://hanmo.dev/problems/unauthorized"
