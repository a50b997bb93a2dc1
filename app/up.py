"""`hanmo up`: the whole service on one machine. The embedded Redis (unless HANMO_REDIS_URL),
the registry migrated, the shipped models registered, then a worker pool and the api as
child processes, supervised until Ctrl-C or SIGTERM stops them all."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from app.redis_conn import EmbeddedRedis
from app.registry.db import upgrade
from app.registry.local import bootstrap_admin_key
from app.services.registration import register_shipped
from app.settings import Settings, get_settings
from app.signals import stop_on_signals


def say(line: str) -> None:
    print(line, flush=True)


def api_processes(requested: int | None, settings: Settings) -> int:
    """How many api processes to run: the flag, else HANMO_API_WORKERS; 0 sizes to the
    machine: half its cores, but at least 2 where there are 2, and at most 4."""
    count = settings.api_workers if requested is None else requested
    if count > 0:
        return count
    return default_api_processes(os.cpu_count() or 1)


def default_api_processes(cores: int) -> int:
    """1 core: 1; 2-5 cores: 2; then half the cores, at most 4. The api, not the worker, is
    the ceiling for small models (bench/README.md, "Scaling across processes and hosts"): on 2
    cores a second api process gave 1,201-1,294 req/s against 874-951 with one (the tiny
    sampler at c=64, same run), the worker's graphs sharing the cores with both."""
    return min(4, max(1, min(cores, 2), cores // 2))


def up(args: argparse.Namespace) -> int:
    """Embedded Redis (unless HANMO_REDIS_URL), migrate, register shipped models, run all."""
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    embedded = None
    if not settings.redis_url:  # api and workers default to this server's socket
        embedded = EmbeddedRedis(settings.embedded_redis_dir())
        embedded.start()
    upgrade(settings.resolved_database_url())
    register_shipped(settings, args.models_dir or settings.models_dir, say)
    admin_key = bootstrap_admin_key(settings)
    if admin_key:
        print(
            f"\nadmin API key (shown once, stored hashed; keep it): {admin_key}\n"
            f"  e.g. curl -H 'Authorization: Bearer {admin_key}' "
            f"http://{settings.host}:{settings.port}/admin/models"
        )
    children = _start_children(args, settings)
    base = f"http://{settings.host}:{settings.port}"
    print(
        f"\nhanmo is up\n  page     {base}/\n  api      {base}\n  docs     {base}/docs\n"
        f"  metrics  {base}/metrics\n"
        f"  registry {settings.resolved_database_url()}\n"
        f"  redis    {settings.resolved_redis_url()}\nCtrl-C stops everything.",
        flush=True,
    )
    return _supervise(children, embedded)


def _start_children(args: argparse.Namespace, settings: Settings) -> list[subprocess.Popen[bytes]]:
    worker = [
        sys.executable,
        "-m",
        "app.cli",
        "worker",
        "--replicas",
        str(args.replicas),
        "--device",
        args.device or settings.device,
    ]
    if args.models:
        worker += ["--models", args.models]
    api = [
        sys.executable,
        "-m",
        "app.cli",
        "api",
        "--workers",
        str(api_processes(args.workers, settings)),
    ]
    return [subprocess.Popen(worker), subprocess.Popen(api)]


def _supervise(children: list[subprocess.Popen[bytes]], embedded: EmbeddedRedis | None) -> int:
    stopping = stop_on_signals()
    while not stopping.is_set() and all(child.poll() is None for child in children):
        time.sleep(0.5)
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        child.wait(timeout=30)
    if embedded is not None:
        embedded.stop()
    return 0
