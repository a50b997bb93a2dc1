"""When to send a refused request again, and after how long.

hanmo answers 429 (a version's queue is full, or the key is over its rate limit) and 503
(Redis or the registry cannot be reached) before it admits a job: the request did not run,
so sending it again is safe, POSTs included. Admin calls that change the registry are retried
on 429 only: there a 503 may come after the change was committed."""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import dataclass

import httpx

from hanmo_client.errors import ApiError

REFUSED: frozenset[int] = frozenset({429, 503})
RATE_LIMITED: frozenset[int] = frozenset({429})


@dataclass(frozen=True, slots=True)
class Retry:
    """Up to `max_retries` more tries (0 disables retrying). Each waits what the server asked
    (`Retry-After`, or the problem's `retry_after_s`), else `backoff_s` doubled per try;
    never longer than `max_backoff_s`: a server that asks for more gets its ApiError back
    at once (its `retry_after_s` says how long it asked for)."""

    max_retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("max_retries, backoff_s and max_backoff_s must be >= 0")

    def delay_s(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before try `attempt + 1` after this refusal; None: give up."""
        if attempt >= self.max_retries:
            return None
        asked = retry_after_s(response)
        wait = asked if asked is not None else self.backoff_s * 2**attempt
        if asked is not None and asked > self.max_backoff_s:
            return None
        return min(wait, self.max_backoff_s)


def retry_after_s(response: httpx.Response, now_s: float | None = None) -> float | None:
    """The wait a refusal asks for: its Retry-After header (seconds or an HTTP date), else
    its problem document's `retry_after_s`; None when it names none."""
    header = response.headers.get("retry-after")
    if header is not None:
        parsed = _header_s(header.strip(), time.time() if now_s is None else now_s)
        if parsed is not None:
            return parsed
    return ApiError.of(response).retry_after_s


def _header_s(value: str, now_s: float) -> float | None:
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    seconds = when.timestamp() - now_s
    return max(0.0, seconds) if math.isfinite(seconds) else None
