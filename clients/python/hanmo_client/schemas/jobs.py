"""Jobs: the 202 answer of an async request, and GET /v1/jobs/{id}."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

M = TypeVar("M", bound=BaseModel)
JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"done", "failed", "cancelled"})


class JobAccepted(BaseModel):
    """202 Accepted: the job is queued; poll `href` (GET /v1/jobs/{id})."""

    job_id: str
    status: Literal["queued"]
    href: str


class JobRead(BaseModel):
    job_id: str
    status: JobStatus
    model: str
    version: int
    created_ms: int
    result: dict[str, Any] | None = Field(
        default=None, description="with `done`: the answer the synchronous request would give"
    )
    problem: dict[str, Any] | None = Field(
        default=None, description="with `failed` or `cancelled`: the problem object (RFC 9457)"
    )
    progress: float | None = Field(default=None, description="long jobs (fonts): 0–1 while running")

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def result_as(self, model: type[M]) -> M:
        """The result as the answer model of the request that made the job (e.g.
        SampleResponse); ValueError while the job has no result."""
        if self.result is None:
            raise ValueError(f"job {self.job_id} is {self.status}: it has no result")
        return model.model_validate(self.result)
