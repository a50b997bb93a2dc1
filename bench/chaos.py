"""Fault runs on a private hanmo (embedded Redis, SQLite, `hanmo api` + `hanmo worker`
processes), recorded in bench/README.md:

* `kill`: 10,000 one-row sample jobs submitted over 60 s while a worker process is killed
  with SIGKILL every 5 s (the pool respawns it); every job must end done exactly once, or
  with a clear error, and none may be lost. Replies are counted on the reply channels.
* `flips`: 200 moves of `production` between two versions on one worker (each a load and an
  unload); the worker's resident memory after the last flip against after the first.
* `font`: 16 clients sampling `vae-digits` for 60 s on one worker slot, alone and then while
  the slot writes a 3,755-glyph font (bench/chaos_font.py): statuses and p50/p99.
* `redis`: a steady stream of sample requests while Redis (a server this run owns) is
  stopped for 3 s and started again; what the requests got during the gap, and how long after
  Redis returned the first request was answered again (api and worker, neither restarted).

    .venv/bin/python -m bench.chaos kill
    .venv/bin/python -m bench.chaos flips
    .venv/bin/python -m bench.chaos redis
    .venv/bin/python -m bench.chaos font [--chars 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

from app.queue import keys
from app.redis_conn import sync_client
from app.registry import apikeys
from app.registry.db import make_engine, make_sessionmaker
from app.services.registration import register_directory
from bench.chaos_font import run_font
from bench.serving import ROOT, export_model, private_hanmo, serving
from training import tiny_sampler

OUT = ROOT / "bench" / "out"


def worker_pids(redis: Any) -> list[int]:
    """Pids of the live worker processes, from their heartbeats."""
    pids = []
    for worker_id in redis.zrangebyscore(keys.WORKERS, time.time() - 3, "+inf"):
        pid = redis.hget(keys.worker(worker_id.decode()), "pid")
        if pid:
            pids.append(int(pid))
    return pids


def count_replies(redis_url: str, stop: threading.Event, seen: Counter[str]) -> None:
    # a plain client (no socket timeout, no health-check PING): quiet spells cannot kill it
    pubsub = Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe(keys.reply_channel("*"))
    while not stop.is_set():
        message = pubsub.get_message(timeout=0.1)
        if message and message["type"] == "pmessage":
            seen[message["data"].partition(b"\n")[0].decode()] += 1
    pubsub.close()


async def submit_all(base: str, jobs: int, seconds: float) -> tuple[list[str], Counter[int]]:
    """Submit `jobs` async sample requests spread over `seconds`; job ids and HTTP statuses."""
    ids: list[str] = []
    statuses: Counter[int] = Counter()
    interval = seconds / jobs
    start = time.monotonic()
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        semaphore = asyncio.Semaphore(32)

        async def one(seed: int) -> None:
            async with semaphore:
                try:
                    response = await http.post(
                        "/v1/models/tiny-sampler/sample",
                        json={"n": 1, "seed": seed, "format": "array"},
                        headers={"Prefer": "respond-async"},
                    )
                except httpx.HTTPError:
                    statuses[0] += 1
                    return
                statuses[response.status_code] += 1
                if response.status_code == 202:
                    ids.append(response.json()["job_id"])

        tasks = []
        for seed in range(jobs):
            delay = start + seed * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(seed)))
        await asyncio.gather(*tasks)
    return ids, statuses


def run_kill(jobs: int, seconds: float, every_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with private_hanmo(tmp, export_model(tmp / "model")) as bench:
            settings = bench.settings.model_copy(
                update={"visibility_timeout_ms": 3000, "port": 8765}
            )
            redis = sync_client(settings.redis_url)
            stop, seen = threading.Event(), Counter[str]()
            listener = threading.Thread(
                target=count_replies, args=(settings.redis_url, stop, seen), daemon=True
            )
            listener.start()
            kills: list[int] = []
            with serving(settings, tmp / "logs", replicas=2) as base:
                killing = threading.Event()

                def killer() -> None:
                    while not killing.wait(every_s):
                        pids = worker_pids(redis)
                        if pids:
                            victim = random.choice(pids)
                            try:
                                os.kill(victim, signal.SIGKILL)
                                kills.append(victim)
                            except ProcessLookupError:
                                pass

                thread = threading.Thread(target=killer, daemon=True)
                thread.start()
                began = time.monotonic()
                ids, statuses = asyncio.run(submit_all(base, jobs, seconds))
                killing.set()
                thread.join()
                submitted_s = time.monotonic() - began
                final: Counter[str] = Counter()
                deadline = time.monotonic() + 120
                with httpx.Client(base_url=base, timeout=30) as http:
                    while True:
                        final = Counter(http.get(f"/v1/jobs/{j}").json()["status"] for j in ids)
                        if final["done"] + final["failed"] == len(ids):
                            break
                        if time.monotonic() > deadline:
                            break
                        time.sleep(1)
                settled_s = time.monotonic() - began
            time.sleep(0.5)
            stop.set()
            listener.join()
            replies = Counter(seen[j] for j in ids)
    return {
        "jobs": jobs,
        "submit_seconds": round(submitted_s, 1),
        "all_settled_seconds": round(settled_s, 1),
        "kills": len(kills),
        "http_statuses": dict(statuses),
        "job_statuses": dict(final),
        "lost": len(ids) - final["done"] - final["failed"],
        "answered_more_than_once": sum(n for k, n in replies.items() if k > 1),
        "never_published": replies.get(0, 0),
    }


def run_flips(flips: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with private_hanmo(tmp, export_model(tmp / "model")) as bench:
            settings = bench.settings.model_copy(update={"drain_s": 0.0, "port": 8766})
            register_directory(settings, tiny_sampler.build(tmp / "v2", seed=1), None)
            engine = make_engine(settings.resolved_database_url())
            with make_sessionmaker(engine).begin() as session:
                key = apikeys.create(session, "bench", "admin")["key"]
            engine.dispose()
            redis = sync_client(settings.redis_url)
            rss: list[int] = []
            seconds: list[float] = []
            wrong = 0
            with serving(settings, tmp / "logs") as base:
                with httpx.Client(
                    base_url=base, timeout=60, headers={"Authorization": f"Bearer {key}"}
                ) as http:
                    pid = worker_pids(redis)[0]
                    for flip in range(flips):
                        target = 2 if flip % 2 == 0 else 1
                        start = time.monotonic()
                        moved = http.put(
                            "/admin/models/tiny-sampler/aliases/production",
                            json={"version": target},
                        )
                        if moved.status_code != 200:
                            raise RuntimeError(f"flip {flip}: {moved.status_code} {moved.text}")
                        answer = http.post(
                            "/v1/models/tiny-sampler/sample", json={"n": 1, "seed": flip}
                        ).json()
                        wrong += answer["version"] != target
                        seconds.append(time.monotonic() - start)
                        time.sleep(0.3)  # let the old version unload (drain_s=0, empty stream)
                        rss.append(_rss_kb(pid))
    first, last = rss[0], rss[-1]
    return {
        "flips": flips,
        "worker_rss_kb_after_first": first,
        "worker_rss_kb_after_last": last,
        "rss_change": round(last / first - 1, 4),
        "rss_max_kb": max(rss),
        "flip_p50_s": round(sorted(seconds)[len(seconds) // 2], 3),
        "answers_from_the_wrong_version": wrong,
    }


def run_redis(gap_s: float) -> dict[str, Any]:
    from app.redis_conn import EmbeddedRedis
    from app.registry.db import upgrade
    from bench.serving import DefaultSettings, free_port

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        redis = EmbeddedRedis(tmp / "redis", port=free_port())
        redis.start()
        try:
            settings = DefaultSettings(
                home=tmp / "home",
                redis_url=redis.url,
                database_url=f"sqlite:///{tmp / 'registry.db'}",
                port=free_port(),
            )
            upgrade(settings.database_url)
            register_directory(settings, export_model(tmp / "model"), "production")
            calls: list[tuple[float, int]] = []
            stop = threading.Event()
            with serving(settings, tmp / "logs") as base:
                pids = sorted(worker_pids(sync_client(settings.redis_url)))

                def load() -> None:
                    with httpx.Client(base_url=base, timeout=10) as http:
                        seed = 0
                        while not stop.is_set():
                            seed += 1
                            try:
                                status = http.post(
                                    "/v1/models/tiny-sampler/sample",
                                    json={"n": 1, "seed": seed, "timeout_ms": 2000},
                                ).status_code
                            except httpx.HTTPError:
                                status = 0
                            calls.append((time.monotonic(), status))
                            stop.wait(0.02)

                thread = threading.Thread(target=load, daemon=True)
                thread.start()
                time.sleep(5)
                down_at = time.monotonic()
                redis.stop()
                time.sleep(gap_s)
                redis.start()
                back_at = time.monotonic()
                time.sleep(10)
                stop.set()
                thread.join()
                pids_after = sorted(worker_pids(sync_client(settings.redis_url)))
                with httpx.Client(base_url=base, timeout=10) as http:
                    ready = http.get("/readyz").status_code
        finally:
            redis.stop()
    during = Counter(status for t, status in calls if down_at <= t < back_at)
    after_ok = [t for t, status in calls if t >= back_at and status == 200]
    after = Counter(status for t, status in calls if t >= back_at)
    return {
        "gap_seconds": gap_s,
        "requests": len(calls),
        "before": dict(Counter(status for t, status in calls if t < down_at)),
        "during_gap": dict(during),
        "after_return": dict(after),
        "first_200_after_return_s": round(after_ok[0] - back_at, 3) if after_ok else None,
        "same_worker_processes": pids == pids_after,
        "readyz_at_end": ready,
    }


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.chaos", description=__doc__)
    parser.add_argument("run", choices=["kill", "flips", "redis", "font"])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between kills")
    parser.add_argument("--flips", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16, help="font: sampling clients")
    parser.add_argument("--chars", type=int, default=None, help="font: characters (3,755)")
    # the bench's stack reads no HANMO_* variable (bench/serving.py DefaultSettings): a font
    # run with other lane settings names them here
    parser.add_argument("--long-job-chunk", type=int, default=None, help="font: glyphs a step")
    parser.add_argument("--long-job-share", type=float, default=None, help="font: lane's share")
    args = parser.parse_args()
    if args.run == "kill":
        result = run_kill(args.jobs, args.seconds, args.every)
    elif args.run == "flips":
        result = run_flips(args.flips)
    elif args.run == "font":
        lane = {"long_job_chunk": args.long_job_chunk, "long_job_share": args.long_job_share}
        lane = {k: v for k, v in lane.items() if v is not None}
        result = run_font(args.seconds, args.clients, args.chars, lane)
    else:
        result = run_redis(3.0)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"chaos-{args.run}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
