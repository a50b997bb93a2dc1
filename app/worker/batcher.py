"""Batching arithmetic: pure functions over jobs and their row counts."""

from __future__ import annotations

from collections.abc import Sequence

from app.queue.entries import Job


def group_by_inputs(jobs: list[Job]) -> list[list[Job]]:
    """Jobs whose inputs share names, dtypes and trailing shapes can run in one batch."""
    groups: dict[tuple[tuple[str, str, tuple[int, ...]], ...], list[Job]] = {}
    for job in jobs:
        key = tuple((n, str(v.dtype), v.shape[1:]) for n, v in sorted(job.inputs.items()))
        groups.setdefault(key, []).append(job)
    return list(groups.values())


def plan_batches(rows: Sequence[int], max_batch_rows: int) -> list[list[int]]:
    """Group job indices, in order, into batches of at most `max_batch_rows` rows.
    A job larger than the limit runs alone (the runtime cuts it into chunks)."""
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for index, count in enumerate(rows):
        if current and total + count > max_batch_rows:
            batches.append(current)
            current, total = [], 0
        current.append(index)
        total += count
    if current:
        batches.append(current)
    return batches


def chunks(total_rows: int, max_batch_rows: int) -> list[slice]:
    """Row slices of at most `max_batch_rows` covering `total_rows`."""
    return [
        slice(i, min(i + max_batch_rows, total_rows)) for i in range(0, total_rows, max_batch_rows)
    ]
