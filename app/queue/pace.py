"""A worker's measured paces: how long each stream's jobs take, per work class, smoothed.

A stream's jobs fall into work classes by their input names (`Job.work`: a style's encode
apart from its generate; a sampler's sampling apart from its scoring), each with its own pace:
one pace for the whole stream was set by whichever class ran last, and a run of cheap encodes
(about 130 cost units a second under the flood of bench.overload) priced the generate jobs
behind them (about 55 a second) at less than half their time, so jobs admitted to finish in
21 s waited 27 s in the queue and were 504s. A class not run for RATE_MEMORY_S no longer sets
the stream's rate."""

from __future__ import annotations

import time

WORK_WEIGHT = 0.3  # of the newest batch in a class's smoothed cost and time
RATE_MEMORY_S = 120.0


class Paces:
    def __init__(self) -> None:
        self._seconds_per_job: dict[str, float] = {}  # stream -> recent busy seconds per job
        # stream -> work class -> (cost, busy s) smoothed, when last measured (monotonic)
        self._work: dict[str, dict[tuple[str, ...], tuple[float, float, float]]] = {}

    def learn(
        self, stream: str, jobs: int, busy_s: float, cost: float = 0.0, work: tuple[str, ...] = ()
    ) -> None:
        """A batch of `jobs` of work class `work` costing `cost` took `busy_s`: reads take no
        more of a stream than READ_SLICE_S of work at its pace per job (app/queue/consumer.py),
        and admit sheds what a batch cannot finish in time at its pace per cost unit."""
        if jobs <= 0 or busy_s <= 0:
            return
        seen = busy_s / jobs
        self._seconds_per_job[stream] = 0.5 * self._seconds_per_job.get(stream, seen) + 0.5 * seen
        if cost > 0:
            # the smoothed cost over the smoothed time, not a mean of batches' rates: a class
            # whose batches vary in size is priced by its work, not by its many small batches
            classes = self._work.setdefault(stream, {})
            old_cost, old_busy, _ = classes.get(work, (cost, busy_s, 0.0))
            classes[work] = (
                WORK_WEIGHT * cost + (1 - WORK_WEIGHT) * old_cost,
                WORK_WEIGHT * busy_s + (1 - WORK_WEIGHT) * old_busy,
                time.monotonic(),
            )

    def seconds_per_job(self, stream: str) -> float | None:
        """Recent busy seconds per job on the stream (None: not measured yet)."""
        return self._seconds_per_job.get(stream)

    def rate(self, stream: str, work: tuple[str, ...] | None = None) -> float:
        """The cost run a second on the stream, smoothed (0: not measured yet): of work class
        `work` when it was measured, else of the slowest class measured in the last
        RATE_MEMORY_S, which is what a worker publishes for ENQUEUE's admission (a backlog
        mixes the classes; pricing all of it at the slowest pace errs towards a 429, never
        towards a 504) and the pace its shedding uses for a class it has not run."""
        classes = self._work.get(stream, {})
        if work in classes:
            cost, busy_s, _ = classes[work]
            return cost / busy_s
        recent = time.monotonic() - RATE_MEMORY_S
        rates = [cost / busy_s for cost, busy_s, seen in classes.values() if seen >= recent]
        return min(rates, default=0.0)
