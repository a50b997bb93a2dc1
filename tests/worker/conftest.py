"""Worker tests start processes: none may outlive its test, or the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.worker.processes import install_leftover_guard, kill, session_members, started_sessions


@pytest.fixture(scope="session", autouse=True)
def leftover_process_guard(request: pytest.FixtureRequest) -> None:
    """At the session's end, any process the tests left alive is killed and fails the run."""
    install_leftover_guard(request.config)


@pytest.fixture(autouse=True)
def no_process_outlives_its_test() -> Iterator[None]:
    """A worker session the test started and did not end is killed, and the test errors."""
    before = started_sessions()
    yield
    left = [p for session in started_sessions() - before for p in session_members(session)]
    if left:
        kill(left)
        pytest.fail("left running by the test (now killed):\n  " + "\n  ".join(map(str, left)))
