"""A request's one deadline (issue 46): set once, shared by every job it submits, and, for a
synchronous answer rendered on the api (a style sheet, a large sample grid), shared with that
render: the last job is due early by the time this api process has been taking to render such
an answer, so the answer as a whole, not only its job, ends by the deadline."""

from __future__ import annotations

import math
import time

from app.errors import DeadlineExceeded, Overloaded
from app.queue.clock import now_ms
from app.settings import Settings

RENDER_WEIGHT = 0.3  # of the newest render in a kind's smoothed pace
# A pace not measured again for this long is forgotten: one measured in a burst would else
# refuse every such answer for good, since a refused answer is never rendered to measure it.
RENDER_MEMORY_S = 60.0


def wants_async(prefer: str | None) -> bool:
    """Whether the client asked for 202 + Location (`Prefer: respond-async`)."""
    return prefer is not None and "respond-async" in prefer.lower()


def deadline_ms(settings: Settings, timeout_ms: int | None, is_async: bool) -> int:
    """A request's absolute deadline (epoch ms), set once: every job it submits carries it."""
    default = settings.max_timeout_ms if is_async else settings.default_timeout_ms
    return now_ms() + min(timeout_ms or default, settings.max_timeout_ms)


def check_time_left(deadline: int, job: str) -> None:
    """A request's next job is not submitted once the request's deadline has passed: a
    later step gets what the earlier ones left, never a fresh timeout (issue 46)."""
    if deadline <= now_ms():
        raise DeadlineExceeded(f"the request's deadline passed before its {job} job was submitted")


def render_key(kind: str, accept: str | None) -> str:
    """What a render pace is kept by: the kind, and whether the answer is an image (a style
    sheet costs more per render row than the JSON answer's small glyphs)."""
    return f"{kind} {'image' if accept and 'image/' in accept else 'json'}"


class RenderPace:
    """Seconds per render row (the kind's `render_rows` unit) of this api process's renders
    off the event loop, per kind and answer type (`render_key`), smoothed; measured from the
    moment a render waits for its turn (`max_heavy_renders`) to its end, so a busy process
    reserves more."""

    def __init__(self) -> None:
        self.seconds_per_row: dict[str, float] = {}
        self.measured: dict[str, float] = {}  # render key -> when last (monotonic s)

    def learn(self, kind: str, accept: str | None, rows: int, seconds: float) -> None:
        if rows <= 0 or seconds <= 0:
            return
        key, seen = render_key(kind, accept), seconds / rows
        old = self.seconds_per_row.get(key, seen)
        self.seconds_per_row[key] = RENDER_WEIGHT * seen + (1 - RENDER_WEIGHT) * old
        self.measured[key] = time.monotonic()

    def pace(self, key: str, prior_s: float = 0.0) -> float:
        """Seconds per render row, as measured in the last RENDER_MEMORY_S, else `prior_s`."""
        if time.monotonic() - self.measured.get(key, -math.inf) > RENDER_MEMORY_S:
            return prior_s
        return self.seconds_per_row.get(key, prior_s)

    def job_deadline(
        self, kind: str, accept: str | None, rows: int, deadline: int, prior_s: float = 0.0
    ) -> int:
        """When the request's last job must end so that its answer's render (`rows`, at the
        pace measured for such answers, or `prior_s` a row when not measured lately: the
        kind's KindSpec.render_prior_s) still ends by `deadline`; 429 when no time is left for
        the job at all."""
        reserve_ms = math.ceil(1000 * rows * self.pace(render_key(kind, accept), prior_s))
        if reserve_ms and deadline - reserve_ms <= now_ms():
            raise Overloaded(
                f"rendering this answer takes about {math.ceil(reserve_ms / 1000)} s here, "
                "more than the request's time left: retry later or with a longer timeout_ms",
                retry_after_s=max(1, math.ceil(reserve_ms / 1000)),
            )
        return deadline - reserve_ms
