"""A job's status, as stored in its Redis hash and answered by GET /v1/jobs/{id}.

The values are the published `hanmo_client.schemas.jobs.JobStatus` (a test holds them equal);
the Lua scripts (app/queue/scripts.py) write the same strings."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"  # in its stream, not started
    RUNNING = "running"  # admitted by a worker
    DONE = "done"  # its result is stored
    FAILED = "failed"  # its problem is stored
    CANCELLED = "cancelled"  # cancelled while queued


FINISHED = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED})
