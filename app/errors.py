"""hanmo's error hierarchy. Each class carries its HTTP status; the api renders them as
RFC 9457 problem objects in one handler. No web-framework import here."""

from __future__ import annotations

from typing import Any, ClassVar


class HanmoError(Exception):
    """Base of every error a client may see."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    slug: ClassVar[str] = "internal"

    def __init__(self, detail: str = "", **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions

    def problem(self) -> dict[str, Any]:
        """The problem object (RFC 9457) for this error, without `instance`."""
        return {
            "type": f"https://hanmo.dev/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extensions,
        }


class InvalidInput(HanmoError):
    status, title, slug = 422, "Invalid input", "invalid-input"


class PayloadTooLarge(HanmoError):
    status, title, slug = 413, "Payload too large", "payload-too-large"


class NotFound(HanmoError):
    status, title, slug = 404, "Not found", "not-found"


class ModelNotFound(NotFound):
    title, slug = "Model not found", "model-not-found"


class ModelVersionNotFound(NotFound):
    title, slug = "Model version not found", "model-version-not-found"


class AliasNotFound(NotFound):
    title, slug = "Alias not found", "alias-not-found"


class PredictionNotFound(NotFound):
    title, slug = "Prediction not found", "prediction-not-found"


class JobNotFound(NotFound):
    title, slug = "Job not found", "job-not-found"


class Conflict(HanmoError):
    status, title, slug = 409, "Conflict", "conflict"


class JobNotCancellable(Conflict):
    title, slug = "Job cannot be cancelled", "job-not-cancellable"


class Unauthorized(HanmoError):
    status, title, slug = 401, "Unauthorized", "unauthorized"


class Forbidden(HanmoError):
    status, title, slug = 403, "Forbidden", "forbidden"


class RateLimited(HanmoError):
    status, title, slug = 429, "Too many requests", "rate-limited"


class QueueFull(HanmoError):
    status, title, slug = 429, "Queue full", "queue-full"


class Overloaded(HanmoError):
    """The model's backlog cannot finish this job by its deadline at the measured rate."""

    status, title, slug = 429, "Too much work queued", "overloaded"


class NoWorker(HanmoError):
    """A synchronous request while no worker is alive to run it."""

    status, title, slug = 503, "No worker", "no-worker"


class ServiceUnavailable(HanmoError):
    status, title, slug = 503, "Service unavailable", "service-unavailable"


class VersionNotServed(ServiceUnavailable):
    """A pinned version no worker can load (or no longer serves): the detail says why."""

    title, slug = "Version not served", "version-not-served"


class RedisUnavailable(ServiceUnavailable):
    title, slug = "Queue unavailable", "queue-unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    title, slug = "Registry unavailable", "registry-unavailable"


class DeadlineExceeded(HanmoError):
    status, title, slug = 504, "Deadline exceeded", "deadline-exceeded"


class ClientGone(HanmoError):
    """The client closed the connection while its synchronous request waited (nginx's 499):
    nobody reads the answer; its job was cancelled if no worker had started it."""

    status, title, slug = 499, "Client closed request", "client-gone"


class JobFailed(HanmoError):
    """A job that a worker could not run (bad graph, too many deliveries, ...)."""

    status, title, slug = 500, "Job failed", "job-failed"


class NonFiniteOutput(HanmoError):
    """A served model gave NaN or Inf for a request: answered as a problem, not as null."""

    status, title, slug = 500, "Model output is not finite", "non-finite-output"


class ContractViolation(HanmoError):
    """A model artifact that does not match its kind's contract."""

    status, title, slug = 422, "Model does not match its kind's contract", "contract-violation"


class ArtifactCorrupt(HanmoError):
    status, title, slug = 422, "Artifact checksum mismatch", "artifact-corrupt"


def raise_listed(error: type[HanmoError], problems: list[str]) -> None:
    """One `error` whose detail lists every problem (a lone one as it is); nothing if none."""
    if len(problems) == 1:
        raise error(problems[0], problems=problems)
    if problems:
        listed = "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
        raise error(f"{len(problems)} problems: {listed}", problems=problems)
