"""Where one request's time goes: issue 48's profile of the request path (item 1).

A private hanmo as bench/scaling.py runs it (Debian's redis-server over TCP with an append-only
file, a SQLite registry, `hanmo api` and `hanmo worker --device cpu`, every setting at its
default except one api process, so there is one process to profile), the tiny sampler
registered, and `hey -c 64` on `POST /v1/models/tiny-sampler/sample` with bench.peer's body.
After 50 checked requests and a 2 s warm-up at c=64, two runs of `PROFILE_SECONDS` (15) s:

1. unprofiled: req/s and each tier's CPU per request from /proc (bench.scaling's accounting),
   the reference for the second run's overhead;
2. profiled: the same load while `py-spy record --format raw --rate 250` (no `--idle`: only
   samples of threads that are running count) samples the api process and the worker's slot
   process (the `hanmo worker` pool's spawned child that runs the jobs), and Redis
   `INFO commandstats` is read before and after (calls and usec per command, per request) with
   `SLOWLOG` reset before and read after (`slowlog-log-slower-than` set to SLOWLOG_US).

The raw stacks are folded into the buckets of BUCKETS (below: one dict, the rules with it) and
printed per process: bucket, % of the process's samples, and ms per request = samples x the
sampling interval / requests answered in the profiled run. A sample is active time as py-spy
sees it (the thread is running or runnable), not CPU time: on a loaded machine a runnable
thread waits for a core. So each table also gives the process's CPU per request from /proc in
the same window, and each bucket's share of it ("CPU ms/req" = share x that figure). py-spy
sees Python threads only: ONNX Runtime's own intra-op threads are in the worker's /proc CPU,
not in its samples.

Needs hey (`make peer-tools`) and py-spy (`.venv/bin/pip install py-spy`; it is not in the dev
extra). Run as root (py-spy attaches with ptrace): `.venv/bin/python -m bench.profile`. Writes
bench/out/profile.json (the tables) and bench/out/profile-{api,worker}.txt (the raw stacks).
See bench/README.md, "Where a request's time goes"."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.redis_conn import sync_client
from bench import serving as hanmo_bench  # private_hanmo, serving, warm_up, ...
from bench.hey import INSTALL_HINT, LoadResult, find_hey, run_hey
from bench.scaling import (
    TIERS,
    Snapshot,
    processes,
    redis_server,
    snapshot,
    uptime,
    usage,
)

CONCURRENCY = 64
BODY = '{"n": 1, "seed": 7, "format": "array"}'  # bench/peer.py's BODY (not imported: that
# module starts the peers' definitions at import)
SECONDS = float(os.environ.get("PROFILE_SECONDS", "15"))
WARM_UP_S = 2.0
RATE_HZ = 250
ATTACH_S = 1.0  # py-spy's start-up before the load begins
SLOWLOG_US = 1000  # SLOWLOG keeps commands slower than this (Redis's default is 10,000)
ROOT = hanmo_bench.ROOT
OUT = ROOT / "bench" / "out"
OTHER = "other"

# The buckets, in the order they are tried. A stack (root ... leaf) is walked from its leaf
# towards its root; the first frame that matches a pattern decides, and within one frame the
# first bucket in this order with a matching pattern. A pattern is `path` or `path:name`:
# `path` a substring of the frame's file as py-spy prints it (e.g. `app/queue/client.py`,
# `uvicorn/`), `name` one dotted part of its qualified function name (`_run_enqueue` matches
# `JobQueue._run_enqueue`, `handle` matches `Worker.handle.<locals>.<lambda>`).
# Libraries that every layer calls (redis-py, asyncio's streams and transports, pydantic,
# NumPy, json, the tensor codec) have no pattern on purpose: their time goes to the frame that
# called them, so redis-py under `_run_enqueue` is ENQUEUE, under the reply listener pub/sub,
# and a socket write under uvicorn's `send` is HTTP. The framework buckets (HTTP, thread pool)
# come last, since their frames are the base of every stack: they take only what no hanmo frame
# above them claims. The event loop's dispatch frames (EVENT_LOOP: a handle's `_run`,
# `_run_once`) end the walk: below them is the process's start (uvicorn's server), so what runs
# in a callback that no frame above claims (task switches, Redis replies fed to their readers)
# is the event loop's. SECOND_PASS buckets are tried only after every other bucket found
# nothing above the dispatch. What nothing matches is OTHER.
BUCKETS: dict[str, tuple[str, ...]] = {
    # -- api process ---------------------------------------------------------------------
    # the version for the name (alias, routing key): the registry cache, its Redis generation
    # check, a miss's database lookup in a thread
    "routing, registry cache": (
        "app/api/registry_cache.py",
        "app/registry/",
        "app/api/inference.py:resolve_kind",
    ),
    # the job's inputs: seeded noise and the job meta (samplers.prepare)
    "noise, job inputs": ("app/noise.py", "app/kinds/sampler/request.py", "app/kinds/spec.py"),
    # admission and the ENQUEUE script with its round trip, the job id, the tensor codec, the
    # SADD of the stream after it
    "ENQUEUE": (
        "app/queue/client.py:submit",
        "app/queue/client.py:_run_enqueue",
        "app/queue/client.py:_enqueue_replicated",
        "app/queue/client.py:_live_workers",
        "app/queue/keys.py",
        "app/api/inference.py:submit",
        "app/api/inference.py:_owned",
        "app/api/inference.py:_counted",
        "app/api/inference.py:check_time_left",
        "app/api/inference.py:deadline_ms",
        "app/kinds/catalog.py",
    ),
    # the reply listener (pub/sub message, unpacking the result, waking the future) and the
    # request's wait for it (a task racing the client's disconnect)
    "pub/sub wake-up, wait": (
        "app/queue/listener.py",
        "app/queue/results.py:unpack",
        "app/queue/results.py:split_message",
        "app/queue/client.py:wait",
        "app/queue/client.py:_read_result",
        "app/api/inference.py:_wait",
        "app/api/inference.py:_disconnected",
    ),
    # UNLINK of a delivered synchronous job's record and result, after the answer is rendered
    "forget (UNLINK)": ("app/queue/client.py:forget",),
    # the published answer model's check of the response body (pydantic)
    "response check": ("app/api/inference.py:checked_response",),
    # the answer: rendering (samples to lists), orjson, headers, building the Response
    "encoding": (
        "app/api/inference.py:render_outcome",
        "app/api/inference.py:render_off_loop",
        "app/api/inference.py:render_rows",
        "app/api/inference.py:json_response",
        "app/api/inference.py:outcome_headers",
        "app/api/inference.py:off_loop",
        "app/kinds/sampler/response.py",
        "app/kinds/base.py",
        "starlette/responses.py:__init__",
        "starlette/responses.py:render",
        "starlette/responses.py:init_headers",
    ),
    # request metrics: the middleware's own code, prometheus_client
    "metrics": ("app/api/metrics.py", "prometheus_client/"),
    # the request's body and parameters: FastAPI's dependency solving with pydantic, the JSON
    # body and its size limits, the api's dependencies (state, auth, headers)
    "validation": (
        "fastapi/dependencies/",
        "fastapi/_compat",
        "fastapi/routing.py:serialize_response",
        "app/api/json_body.py",
        "app/api/limits.py",
        "app/api/deps.py",
        "app/api/auth.py",
        "starlette/requests.py:json",
        "starlette/requests.py:body",
    ),
    # the route and JobRunner's own lines (request.url for the path, the runner object)
    "handler glue": (
        "app/api/routes/",
        "app/api/inference.py:infer",
        "app/api/inference.py:__init__",
        "app/api/inference.py:answer",
        "app/api/inference.py:wants_async",
        "app/api/inference.py:_forgettable",
    ),
    # -- worker slot process -------------------------------------------------------------
    "worker read (XREADGROUP)": (
        "app/queue/consumer.py:read",
        "app/queue/consumer.py:_read",
        "app/queue/consumer.py:_peek_rows",
    ),
    "worker START (admit)": (
        "app/queue/consumer.py:admit",
        "app/queue/consumer.py:_parse",
        "app/queue/consumer.py:_shed_late",
        "app/queue/consumer.py:_learn_rows",
        "app/queue/consumer.py:drop",
        "app/queue/entries.py",
        "app/worker/runner.py:_gather_more",
    ),
    "worker run (onnxruntime)": (
        "onnxruntime/",
        "app/runtime/",
        "app/kinds/sampler/graph.py",
        "app/worker/batcher.py",
        "app/worker/runner.py:_run_batch",
    ),
    "worker FINISH (reply)": (
        "app/worker/runner.py:_reply",
        "app/worker/runner.py:nonfinite",
        "app/worker/runner.py:run_info",
        "app/queue/consumer.py:finish",
        "app/queue/results.py:pack_done",
        "app/queue/results.py:pack_failed",
    ),
    # the loop around the jobs: the rate it publishes (HSET), the long-lane filter, the
    # heartbeat thread, the registry poll, the stale sweep
    "worker loop, rate, heartbeat": (
        "app/worker/runner.py:_measure",
        "app/queue/consumer.py:learn_time",
        "app/worker/lanes.py",
        "app/worker/heartbeat.py",
        "app/worker/stale.py",
        "app/worker/metrics.py",
        "app/worker/main.py",
        "app/worker/runner.py:handle",
        "app/worker/pool.py",
    ),
    # -- frameworks: the base of every stack ---------------------------------------------
    "HTTP (uvicorn, starlette, fastapi)": (
        "uvicorn/",
        "h11/",
        "httptools",
        "starlette/",
        "fastapi/",
    ),
    # anyio's worker threads (the registry cache's lookups run there), their own frames
    "thread pool (anyio)": ("anyio/",),
    # SECOND_PASS: redis-py's async client sends each command through asyncio.wait_for (its
    # socket_timeout), which on Python 3.11 runs the send in a task of its own: the caller is
    # not on that stack
    "Redis send in a wait_for task (caller unseen)": ("redis/asyncio/",),
    # asyncio's dispatch: what a callback runs that nothing above claims, and the loop itself
    "event loop (asyncio)": (
        "asyncio/events.py:_run",
        "asyncio/base_events.py:_run_once",
        "selectors.py",
        "uvloop",
    ),
}
SECOND_PASS = ("Redis send in a wait_for task (caller unseen)",)
EVENT_LOOP = "event loop (asyncio)"
# py-spy without --idle drops the samples of threads it sees idle, but a thread blocked in a
# C call that holds no Python frame of its own (a sync socket read, a lock's wait) still shows
# up as active. A sample whose leaf frame ends with one of these is counted in its bucket as
# "blocked": time spent waiting (for Redis's reply, for a timer), not CPU.
BLOCKED = (
    "hiredis.py:_HiredisParser.read_from_socket",
    "threading.py:Condition.wait",
    "threading.py:Event.wait",
    "queue.py:Queue.get",
    "selectors.py:EpollSelector.select",
    "socketserver.py:BaseServer.serve_forever",
)

_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::\d+)?\)$")
Stack = tuple[tuple[str, tuple[str, ...]], ...]  # (path, function name's parts), root first


@dataclass(frozen=True, slots=True)
class Run:
    """One load run: hey's figures and the CPU of each tier and of the profiled processes."""

    load: LoadResult
    cpu: dict[str, float]  # bench.scaling's usage(): cores per tier, hey, irq, other, steal
    pid_cpu_ms: dict[str, float]  # "api", "worker": CPU ms per answered request (/proc)
    thread_cpu_ms: dict[str, list[tuple[int, str, float]]]  # per process: (tid, name, ms/req)
    loadavg_before: float


@dataclass(frozen=True, slots=True)
class Table:
    """One process's samples folded into buckets."""

    process: str
    samples: int
    # bucket, samples, % of samples, sampled ms/req, of which blocked ms/req, CPU ms/req
    rows: list[tuple[str, int, float, float, float, float]]


# -- py-spy's raw stacks into buckets ---------------------------------------------------------


def frame_key(frame: str) -> tuple[str, tuple[str, ...]]:
    """`function (path:line)` as (path, the dotted parts of the function's name)."""
    found = _FRAME.match(frame)
    if found is None:
        return frame, ()
    return found["path"], tuple(found["function"].split("."))


def _matches(pattern: str, path: str, parts: tuple[str, ...]) -> bool:
    where, _, name = pattern.partition(":")
    return where in path and (not name or name in parts)


def bucket_of(stack: Stack) -> str:
    """The bucket of a stack (root first): BUCKETS' rule, leaf first, up to the event loop's
    dispatch; SECOND_PASS buckets only when no other bucket matched there."""
    segment = []
    for path, parts in reversed(stack):
        if any(_matches(p, path, parts) for p in BUCKETS[EVENT_LOOP]):
            break
        segment.append((path, parts))
    first = [b for b in BUCKETS if b not in SECOND_PASS and b != EVENT_LOOP]
    for tier in (first, SECOND_PASS):
        for path, parts in segment:
            for bucket in tier:
                if any(_matches(p, path, parts) for p in BUCKETS[bucket]):
                    return bucket
    return EVENT_LOOP if len(segment) < len(stack) else OTHER


def read_raw(text: str) -> Counter[Stack]:
    """py-spy's raw (collapsed) output: `frame;frame;... count` per line, root first."""
    stacks: Counter[Stack] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(frame_key(f) for f in stack.split(";"))] += int(count)
    return stacks


def is_blocked(stack: Stack) -> bool:
    """Whether the stack's leaf is a blocking call (BLOCKED)."""
    path, parts = stack[-1]
    leaf = f"{path.rpartition('/')[2]}:{'.'.join(parts)}"
    return leaf.endswith(BLOCKED)


def fold(process: str, stacks: Counter[Stack], requests: int, cpu_ms_per_request: float) -> Table:
    """Per bucket: samples, their share, sampled ms per request, the blocked part of that,
    and the bucket's share of the unblocked samples times the process's CPU per request."""
    counts: Counter[str] = Counter()
    blocked: Counter[str] = Counter()
    for stack, n in stacks.items():
        bucket = bucket_of(stack)
        counts[bucket] += n
        if is_blocked(stack):
            blocked[bucket] += n
    total = sum(counts.values())
    running = max(1, total - sum(blocked.values()))
    interval_ms = 1000 / RATE_HZ
    rows = []
    for bucket in [*BUCKETS, OTHER]:
        n = counts.get(bucket, 0)
        if not n:
            continue
        b = blocked.get(bucket, 0)
        rows.append(
            (
                bucket,
                n,
                100 * n / total,
                n * interval_ms / requests,
                b * interval_ms / requests,
                (n - b) / running * cpu_ms_per_request,
            )
        )
    return Table(process, total, rows)


def top_stacks(stacks: Counter[Stack], bucket: str, n: int = 5) -> list[str]:
    """The leaf ends of a bucket's most sampled stacks (to check the rules)."""
    chosen: Counter[str] = Counter()
    for stack, count in stacks.items():
        if bucket_of(stack) == bucket:
            leaf = reversed(stack[-4:])
            chosen[" < ".join(f"{path}:{'.'.join(parts)}" for path, parts in leaf)] += count
    return [f"{count:>6}  {leaf}" for leaf, count in chosen.most_common(n)]


# -- the processes ----------------------------------------------------------------------------


def find_pids() -> dict[str, int]:
    """The api process (`app.cli api`, one process) and the worker's slot process (the
    `multiprocessing` spawn child of `app.cli worker` that runs jobs)."""
    table = processes()
    mine = [pid for pid, (parent, _, _) in table.items() if parent == os.getpid()]
    api = [pid for pid in mine if "app.cli api" in table[pid][2]]
    pool = [pid for pid in mine if "app.cli worker" in table[pid][2]]
    slots = [
        pid
        for pid, (parent, _, command) in table.items()
        if pool and parent == pool[0] and "spawn_main" in command
    ]
    if len(api) != 1 or len(slots) != 1:
        raise RuntimeError(f"expected one api and one slot process, found {api} and {slots}")
    return {"api": api[0], "worker": slots[0]}


def thread_ticks(pid: int) -> dict[int, tuple[str, int]]:
    """tid -> (thread name, utime + stime ticks) of every thread of a process."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(task.name)] = (name, int(fields[11]) + int(fields[12]))
    return found


def pid_ticks(shot: Snapshot, pid: int) -> int:
    return shot.ticks.get(pid, ("", 0))[1]


def accounted_run(hey: str, url: str, pids: dict[str, int]) -> Run:
    """hey for SECONDS at CONCURRENCY, with bench.scaling's CPU accounting around it."""
    loadavg = os.getloadavg()[0]
    threads_before = {name: thread_ticks(pid) for name, pid in pids.items()}
    before = snapshot()
    load = run_hey(hey, url, BODY, CONCURRENCY, SECONDS)
    after = snapshot()
    threads_after = {name: thread_ticks(pid) for name, pid in pids.items()}
    cpu, _ = usage(before, after)
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    served = max(1, load.ok)
    pid_cpu_ms = {
        name: (pid_ticks(after, pid) - pid_ticks(before, pid)) * tick_ms / served
        for name, pid in pids.items()
    }
    thread_cpu_ms = {
        name: sorted(
            (
                (
                    tid,
                    label,
                    (ticks - threads_before[name].get(tid, (label, 0))[1]) * tick_ms / served,
                )
                for tid, (label, ticks) in threads_after[name].items()
            ),
            key=lambda row: -row[2],
        )
        for name in pids
    }
    return Run(load, cpu, pid_cpu_ms, thread_cpu_ms, loadavg)


def start_spy(py_spy: str, pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy record of one process until SIGINT, raw stacks, no idle samples."""
    command = [py_spy, "record", "--pid", str(pid), "--rate", str(RATE_HZ)]
    command += ["--format", "raw", "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_spy(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    try:
        _, err = spy.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        _, err = spy.communicate()
    if spy.returncode not in (0, -signal.SIGINT, 130):
        raise RuntimeError(f"py-spy exited with {spy.returncode}: {err.decode()[-500:]}")


def find_py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


# -- Redis ------------------------------------------------------------------------------------


def commandstats(redis_url: str) -> dict[str, tuple[int, int]]:
    """command -> (calls, usec) from INFO commandstats."""
    client = sync_client(redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {
        name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
        for name, v in stats.items()
    }


def reset_slowlog(redis_url: str) -> None:
    client = sync_client(redis_url)
    try:
        client.config_set("slowlog-log-slower-than", SLOWLOG_US)
        client.config_set("slowlog-max-len", 1024)
        client.slowlog_reset()
    finally:
        client.close()


def slowlog(redis_url: str) -> list[dict[str, Any]]:
    client = sync_client(redis_url)
    try:
        entries = client.slowlog_get(1024)
    finally:
        client.close()
    return [
        {
            "us": int(e["duration"]),
            "command": e["command"].decode(errors="replace")[:60]
            if isinstance(e["command"], bytes)
            else str(e["command"])[:60],
        }
        for e in entries
    ]


def redis_rows(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], requests: int
) -> list[tuple[str, float, float, float]]:
    """(command, calls per request, usec per call, usec per request), most usec first."""
    rows = []
    for name, (calls, usec) in after.items():
        calls0, usec0 = before.get(name, (0, 0))
        if calls - calls0 <= 0 or name in ("info", "config|set", "slowlog|reset", "config"):
            continue
        d_calls, d_usec = calls - calls0, usec - usec0
        rows.append((name, d_calls / requests, d_usec / d_calls, d_usec / requests))
    return sorted(rows, key=lambda row: -row[3])


# -- report -----------------------------------------------------------------------------------


def print_run(title: str, run: Run) -> None:
    r = run.load
    per = {t: run.cpu[t] * 1000 / r.ok_per_s if r.ok_per_s else 0.0 for t in TIERS}
    print(
        f"  {title}: {r.ok_per_s:,.0f} req/s, p50 {r.p50_ms or 0:.0f} ms, p99 {r.p99_ms or 0:.0f} "
        f"ms, 2xx {r.ok:,}, failed: {r.describe_failures()}; load {run.loadavg_before:.1f}"
    )
    cores = ", ".join(f"{k} {run.cpu[k]:.2f}" for k in (*TIERS, "hey", "irq", "other", "steal"))
    print(f"    cores: {cores}")
    print("    CPU ms/req: " + ", ".join(f"{t} {ms:.2f}" for t, ms in per.items()))
    print(
        "    profiled processes, CPU ms/req (/proc): "
        + ", ".join(f"{k} {v:.2f}" for k, v in run.pid_cpu_ms.items())
    )
    for name, threads in run.thread_cpu_ms.items():
        busy = [f"{tid}/{label} {ms:.2f}" for tid, label, ms in threads if ms > 0][:5]
        print(f"    {name} threads (tid/name ms/req): {', '.join(busy) or 'none'}")


def print_table(table: Table, cpu_ms: float) -> None:
    print(
        f"\n  {table.process}: {table.samples:,} samples at {RATE_HZ} Hz "
        f"({table.samples / RATE_HZ:.1f} s active), /proc CPU {cpu_ms:.2f} ms/req"
    )
    width = max(len(row[0]) for row in table.rows)
    print(f"    {'bucket':<{width}}  samples      %  ms/req  blocked  CPU ms/req")
    for bucket, n, share, ms, blocked, cpu in table.rows:
        print(
            f"    {bucket:<{width}}  {n:>7,}  {share:>5.1f}  {ms:>6.3f}  "
            f"{blocked:>7.3f}  {cpu:>10.3f}"
        )
    ms = sum(row[3] for row in table.rows)
    blocked = sum(row[4] for row in table.rows)
    print(
        f"    {'total':<{width}}  {table.samples:>7,}  100.0  {ms:>6.3f}  {blocked:>7.3f}  "
        f"{cpu_ms:>10.3f}"
    )


def print_redis(rows: list[tuple[str, float, float, float]], slow: list[dict[str, Any]]) -> None:
    print("\n  Redis INFO commandstats, profiled run (commands run by scripts counted again)")
    print(f"    {'command':<22}  calls/req  us/call  us/req")
    for name, calls, us_call, us_req in rows:
        print(f"    {name:<22}  {calls:>9.3f}  {us_call:>7.2f}  {us_req:>6.2f}")
    print(f"\n  SLOWLOG (> {SLOWLOG_US} us): {len(slow)} entries")
    by_command = Counter(e["command"].split(" ")[0] for e in slow)
    for command, n in by_command.most_common(8):
        worst = max(e["us"] for e in slow if e["command"].split(" ")[0] == command)
        print(f"    {command:<12} {n:>4}  worst {worst:,} us")


def print_rule_check(name: str, stacks: Counter[Stack]) -> None:
    """The leaf ends of OTHER's most sampled stacks, to show what the rules left out."""
    leftover = top_stacks(stacks, OTHER)
    if leftover:
        print(f"    {name}, most sampled stacks in {OTHER!r} (leaf < callers):")
        for line in leftover:
            print(f"      {line}")


# -- main -------------------------------------------------------------------------------------


def profile(hey: str, py_spy: str, tmp: Path) -> dict[str, Any]:
    model_dir = hanmo_bench.export_model(tmp / "tiny-sampler")
    with (
        redis_server(tmp / "redis", "127.0.0.1", hanmo_bench.free_port()) as redis_url,
        hanmo_bench.private_hanmo(tmp, model_dir, redis_url) as bench,
    ):
        settings = bench.settings.model_copy(
            update={"port": hanmo_bench.free_port(), "api_workers": 1}
        )
        hanmo_bench.flush(settings)
        with hanmo_bench.serving(settings, tmp / "logs") as base:
            url = f"{base}/v1/models/{bench.served.model}/sample"
            hanmo_bench.warm_up(url)
            run_hey(hey, url, BODY, CONCURRENCY, WARM_UP_S)
            pids = find_pids()
            print(f"  api pid {pids['api']}, worker slot pid {pids['worker']}")
            plain = accounted_run(hey, url, pids)
            print_run("1. unprofiled", plain)
            reset_slowlog(redis_url)
            stats_before = commandstats(redis_url)
            outputs = {name: OUT / f"profile-{name}.txt" for name in pids}
            spies = [start_spy(py_spy, pid, outputs[name]) for name, pid in pids.items()]
            try:
                time.sleep(ATTACH_S)
                profiled = accounted_run(hey, url, pids)
            finally:
                for spy in spies:
                    stop_spy(spy)
            stats_after = commandstats(redis_url)
            slow = slowlog(redis_url)
            print_run("2. profiled (py-spy on the api and the slot)", profiled)
    requests = max(1, profiled.load.ok)
    tables = []
    for name in pids:
        stacks = read_raw(outputs[name].read_text())
        table = fold(name, stacks, requests, profiled.pid_cpu_ms[name])
        print_table(table, profiled.pid_cpu_ms[name])
        print_rule_check(name, stacks)
        tables.append(table)
    rows = redis_rows(stats_before, stats_after, requests)
    print_redis(rows, slow)
    return {
        "unprofiled": asdict(plain),
        "profiled": asdict(profiled),
        "tables": [asdict(t) for t in tables],
        "redis_commandstats": rows,
        "slowlog": slow,
    }


def main() -> int:
    hey, py_spy = find_hey(), find_py_spy()
    if hey is None:
        sys.exit(INSTALL_HINT)
    if py_spy is None:
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"hey c={CONCURRENCY}, {SECONDS:g} s a run, POST {BODY}; py-spy {RATE_HZ} Hz")
    report: dict[str, Any] = {"machine": hanmo_bench.machine(), "uptime_before": uptime()}
    print(f"  {report['uptime_before']}")
    with tempfile.TemporaryDirectory(prefix="hanmo-profile-") as name:
        report |= profile(hey, py_spy, Path(name))
    report |= {
        "uptime_after": uptime(),
        "seconds": SECONDS,
        "concurrency": CONCURRENCY,
        "rate_hz": RATE_HZ,
        "buckets": BUCKETS,
    }
    print(f"  {report['uptime_after']}")
    path = OUT / "profile.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
