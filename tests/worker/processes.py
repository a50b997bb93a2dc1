"""Worker processes for tests: `hanmo worker` in a session of its own (the pool and the slot
processes it spawns share it), its log read line by line as it is written, and stopped with
everything in its session however the test ends; and a guard that no process the tests
started outlives the pytest session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from app.settings import Settings
from tests.helpers import ROOT, settings_env

# A worker told to stop finishes the batch in hand first; what is left after this is killed.
STOP_GRACE_S = 60.0
KILL_WAIT_S = 10.0
LOG_WAIT_S = 180.0  # a safety net only: a wait on a log ends at once when the log ends
GUARD = "hanmo-leftover-processes"
# pytest's own multiprocessing helpers, if a test started them, end when pytest ends
PYTEST_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")
_sessions: set[int] = set()  # the sessions started here (a session's id is its leader's pid)


@dataclass(frozen=True, slots=True)
class Proc:
    """A process as /proc shows it: enough to walk a tree and to say what was left."""

    pid: int
    ppid: int
    group: int
    session: int
    state: str
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} (parent {self.ppid}, session {self.session}): {self.command}"


def read_proc(pid: int) -> Proc | None:
    """The process `pid`, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session ...", where comm may hold spaces and parentheses
    state, ppid, group, session = stat[stat.rindex(")") + 2 :].split()[:4]
    command = argv.replace(b"\0", b" ").decode(errors="replace").strip()
    return Proc(pid, int(ppid), int(group), int(session), state, command)


def live_processes() -> list[Proc]:
    """Every process that has not exited (a zombie has: only its parent's reaping is left)."""
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    found = (read_proc(pid) for pid in pids)
    return [p for p in found if p is not None and p.state not in ("Z", "X")]


def descendants(pid: int) -> list[Proc]:
    """The live processes below `pid`: its children, theirs, and so on."""
    children: dict[int, list[Proc]] = {}
    for proc in live_processes():
        children.setdefault(proc.ppid, []).append(proc)
    found: list[Proc] = []
    parents = [pid]
    while parents:
        below = children.get(parents.pop(), [])
        found += below
        parents += [p.pid for p in below]
    return found


def session_members(session: int) -> list[Proc]:
    """The live processes of a session, orphans included (their parent died: not descendants)."""
    return [p for p in live_processes() if p.session == session]


def is_stopped(pid: int) -> bool:
    """Stopped by a signal (SIGSTOP takes effect asynchronously), or gone."""
    proc = read_proc(pid)
    return proc is None or proc.state in ("T", "t", "Z", "X")


class ProcessLog:
    """A child's output, read on a thread as it is written (so the child never blocks on a
    full pipe), kept for waits on its lines and echoed to this process's stderr (pytest shows
    it with a failing test)."""

    def __init__(self, stream: IO[bytes], label: str) -> None:
        self.lines: list[str] = []
        self.ended = False
        self._label = label
        self._changed = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            os.write(2, f"[{self._label}] {line}\n".encode())
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def matching(self, text: str) -> list[str]:
        with self._changed:
            return [line for line in self.lines if text in line]

    def wait_for(self, text: str, count: int = 1, timeout_s: float = LOG_WAIT_S) -> list[str]:
        """The first `count` lines that contain `text`, once written; fails at once when the
        output ends first: every process that could write it (the pool, the slots it spawned,
        orphaned or not) has exited."""
        with self._changed:
            self._changed.wait_for(
                lambda: len(self.matching(text)) >= count or self.ended, timeout_s
            )
            found = self.matching(text)
            if len(found) >= count:
                return found[:count]
            why = "its output ended" if self.ended else f"nothing more came in {timeout_s:.0f}s"
            tail = "\n".join(self.lines[-20:])
        raise AssertionError(
            f"{self._label}: awaited {count} line(s) containing {text!r} and saw {len(found)};"
            f" {why}. Its last lines:\n{tail}"
        )


class SessionProcess:
    """`python -m app.cli ARGS` with `settings`, started as the leader of a new session, so
    that stopping it reaches every process it spawned, even those its death orphaned."""

    def __init__(self, settings: Settings, args: list[str], label: str) -> None:
        env = {**settings_env(settings), "HANMO_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _sessions.add(self.popen.pid)
        assert self.popen.stdout is not None
        self.log = ProcessLog(self.popen.stdout, f"{label} {self.popen.pid}")

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        stop_session(self.popen, grace_s)


class WorkerProcess(SessionProcess):
    """`hanmo worker`: a pool process that spawns a process per slot and restarts one that
    dies."""

    def __init__(self, settings: Settings, *extra: str) -> None:
        super().__init__(settings, ["worker", "--device", "cpu", *extra], "worker pool")


class ApiProcess(SessionProcess):
    """`hanmo api --workers N`: uvicorn's supervisor and its N processes."""

    def __init__(self, settings: Settings, workers: int) -> None:
        super().__init__(settings, ["api", "--workers", str(workers)], "api")


@contextmanager
def worker_processes(settings: Settings, count: int = 1) -> Iterator[list[WorkerProcess]]:
    """`count` worker pools; each is stopped, with its whole session, when the block ends,
    however it ends (one that fails to stop does not keep the others running)."""
    with ExitStack() as stack:
        workers: list[WorkerProcess] = []
        for _ in range(count):
            worker = WorkerProcess(settings)
            stack.callback(worker.stop)
            workers.append(worker)
        yield workers


def stop_session(popen: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM (and SIGCONT, for a member a test stopped) to the whole session that `popen`
    leads; SIGKILL to what is left after `grace_s`. Returns once nothing of it is left."""
    session = popen.pid
    signal_session(session, signal.SIGTERM)
    signal_session(session, signal.SIGCONT)
    if _session_ended(popen, grace_s):
        return
    if not _session_ended(popen, KILL_WAIT_S, resend=signal.SIGKILL):
        left = "\n  ".join(map(str, session_members(session)))
        raise AssertionError(f"still alive {KILL_WAIT_S:.0f}s after SIGKILL:\n  {left}")


def signal_session(session: int, sig: signal.Signals) -> None:
    """`sig` to the session's process group, and to any member that left the group."""
    with suppress(ProcessLookupError):
        os.killpg(session, sig)
    for proc in session_members(session):
        if proc.group != session:
            with suppress(ProcessLookupError):
                os.kill(proc.pid, sig)


def _session_ended(
    popen: subprocess.Popen[bytes], timeout_s: float, resend: signal.Signals | None = None
) -> bool:
    """Wait (reaping the leader) until no member of the session is alive; with `resend`,
    signal it again at each look, for a member spawned since the last one."""
    deadline = time.monotonic() + timeout_s
    while popen.poll() is None or session_members(popen.pid):
        if time.monotonic() > deadline:
            return False
        if resend is not None:
            signal_session(popen.pid, resend)
        time.sleep(0.05)
    return True


def started_sessions() -> set[int]:
    return set(_sessions)


def kill(procs: list[Proc]) -> None:
    """SIGKILL each, then reap those that are this process's children."""
    for proc in procs:
        with suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    for proc in procs:
        if proc.ppid == os.getpid():
            with suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)


def leftover_processes() -> list[Proc]:
    """Live processes that this pytest process started: its descendants, and whatever is
    left in the sessions started here (orphans are no one's descendants)."""
    found = {p.pid: p for p in descendants(os.getpid())}
    for session in started_sessions():
        found.update((p.pid, p) for p in session_members(session))
    return [
        p
        for p in found.values()
        if not (p.ppid == os.getpid() and any(h in p.command for h in PYTEST_HELPERS))
    ]


class LeftoverGuard:
    """At the end of the session (after every fixture's teardown): kill each process the
    tests left alive, name it, and fail the run."""

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        leftovers = leftover_processes()
        if not leftovers:
            return
        kill(leftovers)
        report = "processes the tests left alive (now killed):\n  " + "\n  ".join(
            map(str, leftovers)
        )
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "leftover processes", red=True)
            reporter.write_line(report, red=True)
        else:
            print(report, file=sys.stderr)
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def install_leftover_guard(config: pytest.Config) -> None:
    """Register LeftoverGuard once, whichever test module asks first."""
    if not config.pluginmanager.has_plugin(GUARD):
        config.pluginmanager.register(LeftoverGuard(), GUARD)
