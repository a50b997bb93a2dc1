"""Batching arithmetic."""

from __future__ import annotations

from app.worker.batcher import chunks, plan_batches


def test_batches_fill_up_to_the_row_limit_in_order() -> None:
    assert plan_batches([1, 1, 1, 1, 1], 2) == [[0, 1], [2, 3], [4]]
    assert plan_batches([3, 2, 4, 1], 5) == [[0, 1], [2, 3]]


def test_a_job_larger_than_the_limit_runs_alone() -> None:
    assert plan_batches([1, 10, 1], 4) == [[0], [1], [2]]


def test_empty_and_single() -> None:
    assert plan_batches([], 8) == []
    assert plan_batches([8], 8) == [[0]]


def test_chunks_cover_all_rows() -> None:
    assert chunks(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert chunks(4, 4) == [slice(0, 4)]
