"""Overload runs of issue 46 on a private hanmo (embedded Redis, SQLite, `hanmo api` and
`hanmo worker` processes, every setting at its default), recorded in bench/README.md:

* `flood`: 32 clients send maximal style-transfer requests for 60 s, alternating 16
  references x 256 characters (JSON) and the same with `Accept: image/png` at 512 px (one big
  sheet), sending the next as soon as one is answered (an attacker honours no Retry-After).
  Beside them, in processes of their own, `/livez` every 50 ms and one `vae-digits` sample
  every 200 ms (both open-loop: a slow answer does not delay the next probe); the RSS of the
  api, the worker pool and its slot processes every 0.5 s. At 60 s the flood's clients give
  up (their connections close); the small probe runs 10 s more, to see when it is back to
  normal: latency <= 2x its median in a 5 s warm-up before the flood.
* `killsync`: 10 synchronous sample requests to a deliberately slow sampler; the slot process
  running one is SIGKILLed (the pool respawns it). Statuses and latencies, `--runs` times.

    .venv/bin/python -m bench.overload flood
    .venv/bin/python -m bench.overload killsync
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import signal
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from redis.exceptions import RedisError

from app.queue import keys
from app.redis_conn import sync_client
from app.registry.cards import read_card
from app.services.registration import register_directory
from bench.chaos import OUT, _rss_kb, worker_pids
from bench.serving import ROOT, free_port, private_hanmo, serving

STYLE = ROOT / "models" / "glyph-style" / "1"
DIGITS = ROOT / "models" / "vae-digits" / "1"
EXAMPLES = ROOT / "docs" / "examples" / "ma-shan-zheng"
REFS = {"永": "yong.png", "和": "he.png", "书": "shu.png", "法": "fa.png"}
STYLE_URL = "/v1/models/glyph-style/style-transfer"
SMALL_URL = "/v1/models/vae-digits/sample"
VARIANTS = ("a_json", "b_png_512")  # the flood's two requests


def style_bodies() -> tuple[bytes, bytes]:
    """(a) 16 references (the 4 Ma Shan Zheng examples, 4 times each) and 256 distinct
    characters of the card's; (b) the same at 512 px, to be asked for as one PNG sheet."""
    chars = read_card(STYLE).signature.chars
    refs = [
        {"image": base64.b64encode((EXAMPLES / f).read_bytes()).decode(), "char": c}
        for c, f in REFS.items()
    ] * 4
    text = chars[:256]
    if len(set(text)) != 256 or not set(REFS) <= set(chars):
        raise RuntimeError("the card's charset lacks the text or the references' characters")
    json_body = {"references": refs, "text": text}
    return json.dumps(json_body).encode(), json.dumps({**json_body, "size": 512}).encode()


# -- probes, each in a process of its own (the flood's clients do not share their GIL) -------


def probe(base: str, kind: str, every_s: float, events: tuple[Any, Any], out: str) -> None:
    """Open-loop probe: one request every `every_s` until `stop` is set, then write
    [sent (monotonic, comparable across processes), seconds, status] rows to `out`."""
    ready, stop = events
    rows: list[tuple[float, float, int]] = []

    async def main() -> None:
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:

            async def one(seed: int) -> None:
                sent = time.monotonic()
                try:
                    if kind == "livez":
                        status = (await http.get("/livez")).status_code
                    else:
                        body = {"n": 1, "seed": seed}
                        status = (await http.post(SMALL_URL, json=body)).status_code
                except httpx.HTTPError:
                    status = 0
                rows.append((sent, time.monotonic() - sent, status))

            tasks, seed, start = [], 0, time.monotonic()
            ready.set()
            while not stop.is_set():
                tasks.append(asyncio.create_task(one(seed)))
                seed += 1
                await asyncio.sleep(max(0.0, start + seed * every_s - time.monotonic()))
            await asyncio.gather(*tasks)

    asyncio.run(main())
    Path(out).write_text(json.dumps(rows))


@contextmanager
def probing(base: str, kind: str, every_s: float, out: Path) -> Iterator[Any]:
    """A `probe` process; yields the event that stops it, and waits for its rows at exit."""
    context = mp.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    process = context.Process(target=probe, args=(base, kind, every_s, (ready, stop), str(out)))
    process.start()
    try:
        if not ready.wait(120):
            raise RuntimeError(f"the {kind} probe did not start")
        yield stop
    finally:
        stop.set()
        process.join(timeout=180)


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid`, from /proc/<pid>/stat."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _rss(pid: int) -> int:
    try:
        return _rss_kb(pid)
    except (OSError, RuntimeError):
        return 0  # gone between the listing and the read (a killed slot)


def sample(
    redis: Any, stop: threading.Event, rss: dict[str, dict[str, int]], backlog: list[list[float]]
) -> None:
    """Every 0.5 s, RSS (kB) of the largest api process and of all of them (with several api
    processes, uvicorn's supervisor and its servers), of the worker pool process, of its
    biggest slot process (by heartbeat, and any other child of the pool) and of the worker's
    whole tree,
    into rss["last"] and rss["peak"] (the pids: this process's `hanmo api|worker` children);
    and [time, stream entries, pending entries] over every job stream into `backlog`."""
    roles = {}
    for pid in _children(os.getpid()):
        line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        roles.update({role: pid for role in ("api", "worker") if f"app.cli {role}" in line})
    while True:
        slots = set(_children(roles["worker"]))
        try:
            slots |= set(worker_pids(redis))
            streams = list(redis.scan_iter(match=keys.STREAM_PATTERN))
            pending = sum(redis.xpending(s, keys.GROUP)["pending"] for s in streams)
            backlog.append([time.monotonic(), sum(map(redis.xlen, streams)), pending])
        except RedisError:  # a Redis hiccup costs one sample of pids and backlog
            pass
        apis = [roles["api"], *_children(roles["api"])]  # uvicorn's supervisor, its servers
        now = {
            "api": max(_rss(pid) for pid in apis),  # the largest api process
            "api_total": sum(_rss(pid) for pid in apis),
            "worker_pool": _rss(roles["worker"]),
        }
        now["worker_slot"] = max((_rss(pid) for pid in slots), default=0)
        now["worker_total"] = now["worker_pool"] + sum(_rss(pid) for pid in slots)
        rss["last"] = now
        rss["peak"] = {k: max(v, rss.get("peak", {}).get(k, 0)) for k, v in now.items()}
        if stop.wait(0.5):
            return


# -- flood -----------------------------------------------------------------------------------


async def flood(base: str, clients: int, seconds: float, rows: list[list[Any]], redis: Any) -> None:
    """`clients` loops, each alternating body (a) and (b), for `seconds`, appending [sent,
    seconds, status, variant, Retry-After] rows; requests still unanswered then are abandoned
    (the client gives up and closes its connection)."""
    bodies = dict(zip(VARIANTS, style_bodies(), strict=True))
    limits = httpx.Limits(max_connections=clients * 2)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:

        async def client(turn: int) -> None:
            while True:
                variant = VARIANTS[turn % 2]
                turn += 1
                headers = {"Content-Type": "application/json"}
                headers["Accept"] = "image/png" if variant == "b_png_512" else "application/json"
                sent = time.monotonic()
                try:
                    answer = await http.post(STYLE_URL, content=bodies[variant], headers=headers)
                    status, retry = answer.status_code, answer.headers.get("Retry-After")
                    problem = answer.json() if status >= 500 else {}
                    detail, job_id = problem.get("detail", ""), problem.get("job_id")
                except (httpx.HTTPError, ValueError) as exc:  # what went wrong, for the report
                    status, retry, job_id = 0, None, None
                    detail = f"{type(exc).__name__}: {exc}"[:200]
                record = None  # a 504's job as it stood when its request gave up
                if status == 504 and job_id:
                    record = await asyncio.to_thread(redis.hgetall, keys.job(job_id))
                rows.append([sent, time.monotonic() - sent, status, variant, retry, detail, record])

        tasks = [asyncio.create_task(client(i)) for i in range(clients)]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def summary(rows: list[list[Any]]) -> dict[str, Any]:
    """Statuses and latency percentiles (ms) of [sent, seconds, status, ...] rows."""
    seconds = sorted(row[1] for row in rows)

    def ms(q: float) -> float | None:
        at = min(len(seconds) - 1, int(q * len(seconds)))
        return round(seconds[at] * 1000, 1) if seconds else None

    return {
        "n": len(rows),
        "statuses": dict(Counter(int(row[2]) for row in rows)),
        **{"p50_ms": ms(0.5), "p99_ms": ms(0.99), "max_ms": ms(1.0)},
        "max_ms_by_status": {
            status: round(max(row[1] for row in rows if int(row[2]) == status) * 1000, 1)
            for status in sorted({int(row[2]) for row in rows})
        },
    }


def run_flood(clients: int, seconds: float, after_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with private_hanmo(tmp, STYLE) as bench:
            settings = bench.settings.model_copy(update={"port": free_port()})
            register_directory(settings, DIGITS, "production")
            redis = sync_client(settings.redis_url)
            style: list[list[Any]] = []
            rss: dict[str, dict[str, int]] = {}
            backlog: list[list[float]] = []
            with serving(settings, tmp / "logs") as base:
                with httpx.Client(base_url=base, timeout=120) as http:
                    for seed in range(3):  # both models answer once before anything is timed
                        http.post(SMALL_URL, json={"n": 1, "seed": seed}).raise_for_status()
                    http.post(STYLE_URL, content=style_bodies()[0]).raise_for_status()
                stop_rss = threading.Event()
                sampler = threading.Thread(
                    target=sample, args=(redis, stop_rss, rss, backlog), daemon=True
                )
                sampler.start()
                with probing(base, "livez", 0.05, tmp / "livez.json"):
                    with probing(base, "small", 0.2, tmp / "small.json"):
                        time.sleep(5.0)
                        rss_before = dict(rss["last"])
                        flood_start = time.monotonic()
                        asyncio.run(flood(base, clients, seconds, style, redis))
                        flood_end = time.monotonic()
                        time.sleep(after_s)
                stop_rss.set()
                sampler.join()
            livez = json.loads((tmp / "livez.json").read_text())
            small = json.loads((tmp / "small.json").read_text())
            looked = looks_shed(tmp / "logs")
    times = (flood_start, flood_end, after_s)
    head = {"clients": clients, "flood_s": seconds, "abandoned_at_end": clients}
    rss["before"] = rss_before
    report = flood_report(style, livez, small, rss, times) | drained(backlog, times)
    return head | report | {"style_504_jobs": late_jobs(style), "queue_look_shed_jobs": looked}


def looks_shed(logs: Path) -> int:
    """How many queued jobs the workers' looks at their queues answered 429 (app/queue/late.py
    logs each look that shed any: `worker.shed_queued stream=... jobs=N`)."""
    found = 0
    for log in logs.glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if "worker.shed_queued" in line:
                found += int(line.rpartition("jobs=")[2].split()[0])
    return found


def late_jobs(style: list[list[Any]]) -> dict[str, Any]:
    """Where each 504's job stood when its request gave up (its record read at once): its op,
    status, cost, seconds queued (created -> started by a worker, or -> the deadline while
    still queued) and seconds it had run by then, so a miss can be told apart as waiting in
    the queue or running long."""
    seen: list[dict[str, Any]] = []
    for row in style:
        if row[2] != 504 or not row[6]:
            continue
        fields = {k.decode(): v.decode() for k, v in row[6].items()}
        ms = {
            k: int(fields[k])
            for k in ("created_ms", "started_ms", "finished_ms", "deadline_ms")
            if k in fields
        }
        op = json.loads(fields.get("meta", "{}")).get("op")
        seen.append(
            {
                "op": op,
                "status": fields.get("status", "expired"),
                "worker": fields.get("worker"),
                "cost": fields.get("cost"),
                "queued_s": _span(ms, "created_ms", "started_ms"),
                "queued_until_deadline_s": _span(ms, "created_ms", "deadline_ms"),
                "started_before_deadline_s": _span(ms, "started_ms", "deadline_ms"),
                "ran_s": _span(ms, "started_ms", "finished_ms"),
                "request_s": round(row[1], 2),
            }
        )
    return {"n": len(seen), "jobs": seen}


def _span(ms: dict[str, int], start: str, end: str) -> float | None:
    return round((ms[end] - ms[start]) / 1000, 2) if start in ms and end in ms else None


def drained(backlog: list[list[float]], times: tuple[float, float, float]) -> dict[str, Any]:
    """The job streams' backlog when the flood stopped, and when they were next empty."""
    end = times[1]
    at_end = next(([n, p] for t, n, p in backlog if t >= end), None)
    empty = next((t - end for t, n, _ in backlog if t >= end and n == 0), None)
    return {
        "streams_at_flood_end": {"entries": at_end[0], "pending": at_end[1]} if at_end else None,
        "streams_empty_s_after_flood": (
            round(empty, 1) if empty is not None else f"> {backlog[-1][0] - end:.0f}"
        ),
    }


def recovered_after(after: list[list[Any]], end: float, normal_s: float) -> float | None:
    """Seconds from `end` to the first small request from which on every one answered 200 in
    at most `normal_s` (None: not by the last)."""
    recovered_at = None
    for sent, seconds, status in after:
        normal = status == 200 and seconds <= normal_s
        recovered_at = (recovered_at or sent) if normal else None
    return round(recovered_at - end, 2) if recovered_at else None


def recovered_by_window(after: list[list[Any]], end: float, normal_s: float) -> float | None:
    """Seconds from `end` to the first small request from which on every 1 s window of
    requests (each request and those sent within 1 s after it) answered 200 with a median of
    at most `normal_s` (None: not by the last)."""
    recovered_at = None
    for i, (sent, _, _) in enumerate(after):
        window = [r for r in after[i:] if r[0] < sent + 1.0]
        normal = all(r[2] == 200 for r in window) and (
            statistics.median(r[1] for r in window) <= normal_s
        )
        recovered_at = (recovered_at or sent) if normal else None
    return round(recovered_at - end, 2) if recovered_at else None


def flood_report(
    style: list[list[Any]],
    livez: list[list[Any]],
    small: list[list[Any]],
    rss: dict[str, dict[str, int]],
    times: tuple[float, float, float],
) -> dict[str, Any]:
    start, end, after_s = times
    warm = [r[1] for r in small if r[0] < start and r[2] == 200]
    warm_median = statistics.median(warm)
    after = sorted(r for r in small if r[0] >= end)
    # normal: (strict) every request at most twice the warm-up's median; (range) none slower
    # than the slowest warm-up request; (window) every 1 s window's median at most twice the
    # warm-up's, all 200. With a median of ~8 ms the strict rule calls one 16 ms answer
    # abnormal, and the warm-up itself holds single answers at 5-10x its median.
    recovered = {
        "strict": recovered_after(after, end, 2 * warm_median),
        "range": recovered_after(after, end, max(2 * warm_median, max(warm))),
        "window": recovered_by_window(after, end, 2 * warm_median),
    }
    first_ok = next((r[0] - end for r in after if r[2] == 200), None)
    retries = sorted(float(r[4]) for r in style if r[4] is not None)
    return {
        "style": {v: summary([r for r in style if r[3] == v]) for v in VARIANTS},
        "style_504": sum(r[2] == 504 for r in style),
        "style_5xx_details": dict(Counter(r[5] for r in style if r[2] >= 500)),
        "style_failed_details": [  # no HTTP answer: when sent, how long it took, why
            [round(r[0] - start, 2), round(r[1], 2), r[3], r[5]] for r in style if r[2] == 0
        ],
        "retry_after_s_min_median_max": retries
        and [retries[0], statistics.median(retries), retries[-1]],
        "livez_during_flood": summary([r for r in livez if start <= r[0] < end]),
        "small_warmup_median_ms": round(warm_median * 1000, 1),
        "small_warmup_each_ms": [round(r[1] * 1000) for r in small if r[0] < start],
        "small_during_flood": summary([r for r in small if start <= r[0] < end]),
        "small_after_flood": summary(after),
        "small_after_flood_each": [[round(r[0] - end, 2), round(r[1] * 1000), r[2]] for r in after],
        "small_recovered_s_after_flood": recovered["strict"] or f"not within {after_s:g} s",
        "small_recovered_in_warmup_range_s_after_flood": (
            recovered["range"] or f"not within {after_s:g} s"
        ),
        "small_recovered_by_1s_median_s_after_flood": (
            recovered["window"] or f"not within {after_s:g} s"
        ),
        "small_first_200_s_after_flood": None if first_ok is None else round(first_ok, 2),
        "rss_mb": {when: {k: round(kb / 1024) for k, kb in rss[when].items()} for when in rss},
    }


# -- kill during sync ------------------------------------------------------------------------


def slow_sampler_dir(directory: Path) -> Path:
    """tests/helpers.py's deliberately slow sampler, 1,024 wide (80 rows: about 3 s on 2
    quiet cores)."""
    from tests.helpers import slow_sampler

    return slow_sampler(directory, layers=600, width=1024)


def run_killsync(requests: int, rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with private_hanmo(tmp, slow_sampler_dir(tmp / "slow")) as bench:
            settings = bench.settings.model_copy(update={"port": free_port()})
            with serving(settings, tmp / "logs") as base:
                return kill_during(base, sync_client(settings.redis_url), requests, rows)


def kill_during(base: str, redis: Any, requests: int, rows: int) -> dict[str, Any]:
    url = "/v1/models/slow-sampler/sample"
    httpx.post(base + url, json={"n": 1, "format": "array"}, timeout=120).raise_for_status()
    results: list[tuple[int, float, str]] = [(0, 0.0, "")] * requests

    def one(i: int) -> None:
        start = time.monotonic()
        with httpx.Client(base_url=base, timeout=120) as http:
            try:
                body = {"n": rows, "seed": 100 + i, "format": "array"}
                response = http.post(url, json=body)
                status, job = response.status_code, response.json().get("job_id", "")
            except (httpx.HTTPError, ValueError):
                status, job = 0, ""
        results[i] = (status, time.monotonic() - start, job)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(requests)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    victim, held, killed_at = _kill_holder(redis, started)
    for thread in threads:
        thread.join()
    return {
        "requests": requests,
        "rows_each": rows,
        "statuses": dict(Counter(s for s, _, _ in results)),
        "latencies_s": [round(s, 2) for _, s, _ in results],
        "killed_pid": victim,
        "jobs_running_on_it_at_kill": len(held),
        "latencies_s_of_those": [round(s, 2) for _, s, job in results if job in held],
        "killed_at_s": round(killed_at - started, 2),
        "slot_respawned_as": worker_pids(redis),
    }


def _kill_holder(redis: Any, started: float) -> tuple[int | None, set[str], float]:
    """Wait for a job of this run to be running, then SIGKILL the slot that holds it (its
    pid from the heartbeat of the job's `worker`). Returns the pid and the jobs it held."""
    while time.monotonic() - started < 60:
        holders: dict[str, set[str]] = {}
        for name in redis.scan_iter(match=keys.job("*"), count=1000):
            status, worker = redis.hmget(name, "status", "worker")
            if status == b"running" and worker:
                job_id = name.decode().rpartition(":")[2]
                holders.setdefault(worker.decode(), set()).add(job_id)
        if holders:
            worker_id, held = max(holders.items(), key=lambda item: len(item[1]))
            pid = int(redis.hget(keys.worker(worker_id), "pid"))
            os.kill(pid, signal.SIGKILL)
            return pid, held, time.monotonic()
        time.sleep(0.02)
    return None, set(), time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.overload", description=__doc__)
    parser.add_argument("run", choices=["flood", "killsync"])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--after", type=float, default=10.0, help="small probe after the flood")
    parser.add_argument("--runs", type=int, default=3, help="killsync: fresh stacks")
    parser.add_argument("--rows", type=int, default=8, help="killsync: rows per request")
    args = parser.parse_args()
    if args.run == "flood":
        result: Any = run_flood(args.clients, args.seconds, args.after)
    else:
        result = [run_killsync(10, args.rows) for _ in range(args.runs)]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"overload-{args.run}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
