"""ApiError: a non-2xx answer, with the problem document (RFC 9457) the server sent."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    """A non-2xx answer: `status`, and the server's problem document in `problem` (a dict,
    with `type`, `title`, `status`, `detail`, `instance` and extensions such as `errors`
    or `retry_after_s`)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"{status} {self.title}: {self.detail}")

    @classmethod
    def of(cls, response: httpx.Response) -> ApiError:
        """The error for a refused response; a body that is not a problem document (a proxy's
        HTML page, say) becomes one with the reason phrase and the start of the text."""
        try:
            problem = response.json()
        except ValueError:
            problem = None
        if not isinstance(problem, dict):
            problem = {"title": response.reason_phrase, "detail": response.text[:500]}
        return cls(response.status_code, problem)

    @property
    def type(self) -> str:
        """The problem type URI (`about:blank` when the server gave none)."""
        return str(self.problem.get("type") or "about:blank")

    @property
    def title(self) -> str:
        return str(self.problem.get("title", ""))

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail", ""))

    @property
    def instance(self) -> str | None:
        value = self.problem.get("instance")
        return None if value is None else str(value)

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Per-field errors of a 422 (`field`, `message`, `type`)."""
        errors = self.problem.get("errors")
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []

    @property
    def retry_after_s(self) -> float | None:
        """How long the server asked to wait before sending again (429, 503)."""
        value = self.problem.get("retry_after_s")
        return float(value) if isinstance(value, int | float) else None
