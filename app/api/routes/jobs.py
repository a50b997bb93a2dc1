"""Jobs: GET /v1/jobs/{id} (state and, once done, the result) and DELETE (cancel)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Path, Request
from hanmo_client.schemas import JobRead
from starlette.responses import Response

from app.api.auth import may_see
from app.api.deps import AcceptDep, StateDep
from app.api.inference import checked_response
from app.api.render_cache import render_job
from app.api.state import State
from app.errors import JobNotFound
from app.queue.results import Outcome
from app.queue.status import JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
JobId = Path(pattern=r"^[0-9a-f]{24}$")


async def visible_job(
    request: Request, state: State, job_id: str
) -> tuple[dict[str, str], dict[str, Any], Outcome | None]:
    """A job's fields, meta and outcome, as `status` reads them; 404 for an unknown job and for
    one the caller may not see (its owner's, when keys are required)."""
    fields, outcome = await state.queue.status(job_id)
    meta = json.loads(fields["meta"])
    if not may_see(request, state, meta.get("owner")):
        raise JobNotFound(f"no job {job_id!r} (unknown or expired)")
    return fields, meta, outcome


@router.get("/{job_id}", response_model=JobRead)
async def get_job(
    request: Request, state: StateDep, accept: AcceptDep = None, job_id: str = JobId
) -> Response:
    """A job's status; with status `done` its result, with `failed` its problem."""
    fields, meta, outcome = await visible_job(request, state, job_id)
    body = {
        "job_id": job_id,
        "status": JobStatus(fields["status"]),
        "model": meta["model"],
        "version": meta["version"],
        "created_ms": int(fields["created_ms"]),
        "result": None,
        "problem": None,
    }
    if "progress" in fields:
        body["progress"] = float(fields["progress"])
    if outcome is not None and outcome.ok and fields["status"] == JobStatus.DONE:
        rendered = await render_job(state, request.url.path, meta, job_id, outcome, accept)
        if rendered.media_type != "application/json":
            return rendered  # a PNG sheet or a font file
        body["result"] = json.loads(bytes(rendered.body))
    elif outcome is not None:
        body["problem"] = outcome.problem
    return checked_response(JobRead.model_validate, body)


@router.delete("/{job_id}", status_code=204)
async def cancel_job(request: Request, state: StateDep, job_id: str = JobId) -> Response:
    """Cancel a job no worker has started; 409 once it runs or has finished."""
    fields, _, _ = await visible_job(request, state, job_id)
    await state.queue.cancel(job_id, fields["stream"])
    return Response(status_code=204)
