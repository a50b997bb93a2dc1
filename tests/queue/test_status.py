"""Job statuses: one enum on the server, equal to the client's published Literal, and the
same strings on the wire."""

from __future__ import annotations

import json
from typing import get_args

from hanmo_client.schemas import jobs as client_jobs

from app.queue import scripts
from app.queue.status import FINISHED, JobStatus


def test_the_enum_is_the_published_status_type() -> None:
    assert set(JobStatus) == set(get_args(client_jobs.JobStatus))
    assert FINISHED == client_jobs.FINISHED


def test_statuses_are_the_same_strings_on_the_wire() -> None:
    assert json.dumps({"status": JobStatus.DONE}) == '{"status": "done"}'
    assert str(JobStatus.CANCELLED) == "cancelled"
    scripts_text = scripts.ENQUEUE + scripts.START + scripts.CANCEL
    for status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLED):
        assert f"'{status}'" in scripts_text  # the Lua scripts write these literally
