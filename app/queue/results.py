"""Job outcomes as stored in Redis and published to the api: one blob format for both."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.queue import codec

DONE, FAILED = b"D", b"F"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A finished job: its output tensors and how they were made (provider, runtime, timings),
    or the problem object that explains its failure."""

    tensors: dict[str, np.ndarray] | None = None
    problem: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None


def pack_done(tensors: dict[str, np.ndarray], info: dict[str, Any]) -> bytes:
    header = json.dumps(info).encode()
    return DONE + struct.pack("<I", len(header)) + header + codec.encode(tensors)


def pack_failed(problem: dict[str, Any]) -> bytes:
    return FAILED + json.dumps(problem).encode()


def unpack(blob: bytes) -> Outcome:
    if blob[:1] == DONE:
        (size,) = struct.unpack_from("<I", blob, 1)
        info = json.loads(blob[5 : 5 + size])
        return Outcome(tensors=codec.decode(blob[5 + size :]), info=info)
    return Outcome(problem=json.loads(blob[1:]))


def split_message(data: bytes) -> tuple[str, bytes]:
    """A reply-channel message is `job_id \\n blob`."""
    job_id, _, blob = data.partition(b"\n")
    return job_id.decode(), blob
