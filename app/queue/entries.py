"""Stream entries as jobs: what the api's ENQUEUE script wrote, parsed on the worker side."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from app.queue import codec

Entries = list[tuple[bytes, dict[bytes, bytes]]]  # (entry id, fields), as XREADGROUP gives them


@dataclass(slots=True)
class Job:
    entry_id: str
    job_id: str
    inputs: dict[str, np.ndarray]
    deadline_ms: int
    reply: str
    alias: str = ""
    started_ms: int = 0
    cost: float = 0.0  # what its kind says it costs (ENQUEUE's admission unit)
    trace: str = ""  # the W3C traceparent of the api's enqueue span (app/tracing.py)
    request_id: str = ""  # the id of the request that sent it (app/logs.py)

    @property
    def enqueued_ms(self) -> int:
        """When the api added the entry (a stream id starts with its time in ms)."""
        return int(self.entry_id.partition("-")[0])

    @property
    def work(self) -> tuple[str, ...]:
        """Its work class (`work_class`), by which a worker measures its pace."""
        return work_class(self.inputs)

    @property
    def rows(self) -> int:
        return int(next(iter(self.inputs.values())).shape[0]) if self.inputs else 0


def work_class(names: Iterable[str]) -> tuple[str, ...]:
    """A job's work class: its input names, sorted (a style's encode apart from its generate).
    A worker measures a pace per class (app/queue/pace.py); the api writes it into the entry,
    comma-joined, for a worker's look at its queue (app/queue/late.py)."""
    return tuple(sorted(names))


def parse_entry(entry_id: bytes, fields: dict[bytes, bytes]) -> Job:
    """A stream entry as a Job; CodecError or KeyError when it is malformed."""
    return Job(
        entry_id=entry_id.decode(),
        job_id=fields[b"job"].decode(),
        inputs=codec.decode(fields[b"inputs"]),
        deadline_ms=int(fields[b"deadline_ms"]),
        reply=fields[b"reply"].decode(),
        alias=fields.get(b"alias", b"").decode(),
        cost=float(fields.get(b"cost", b"0")),
        trace=fields.get(b"trace", b"").decode(),
        request_id=fields.get(b"rid", b"").decode(),
    )
