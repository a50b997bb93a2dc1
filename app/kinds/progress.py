"""Progress of a long job, reported from inside a kind's run (a font build) to whoever runs
it: the worker installs a reporter for single-job batches and writes the fraction to the
job's record, where GET /v1/jobs/{id} reads it."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_reporter: contextvars.ContextVar[Callable[[float], None] | None] = contextvars.ContextVar(
    "hanmo_progress", default=None
)


def report(fraction: float) -> None:
    reporter = _reporter.get()
    if reporter is not None:
        reporter(max(0.0, min(1.0, float(fraction))))


@contextmanager
def reporting(reporter: Callable[[float], None] | None) -> Iterator[None]:
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)
