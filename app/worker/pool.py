"""The worker pool: one process per slot (device x replica), restarted when one dies."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import secrets
import signal
import socket
import time
from dataclasses import dataclass

from app import logs, tracing
from app.settings import Settings
from app.signals import stop_on_signals

log = logging.getLogger("hanmo.worker")
POLL_S = 0.1  # how often the pool looks at its slots


@dataclass(frozen=True, slots=True)
class Slot:
    device: str
    index: int
    threads: int

    def worker_id(self, pid: int) -> str:
        """<host>-<device>-<slot>-<pid>-<random>: readable, and unique even where two hosts
        (containers, each its process 1) share a hostname: a dead worker's id is never reused,
        so its pending entries and group membership are never mistaken for a live one's."""
        device = self.device.replace(":", "")
        return f"{socket.gethostname()}-{device}-{self.index}-{pid}-{secrets.token_hex(3)}"


def restart_delay_s(crashes: int, base_s: float, cap_s: float) -> float:
    """How long the pool waits before restarting a slot that died `crashes` times in a row:
    at once after the first, then base_s, doubling, never more than cap_s."""
    if crashes <= 1:
        return 0.0
    return float(min(cap_s, base_s * 2 ** min(crashes - 2, 62)))


def plan_slots(devices: list[str], replicas: int, threads: int = 0) -> list[Slot]:
    """Slots for the devices; CPU slots share the cores unless `threads` is given."""
    per_device = [(d, r) for d in devices for r in range(replicas)]
    cpu_slots = sum(1 for d, _ in per_device if d == "cpu") or 1
    cpu_threads = threads or max(1, (os.cpu_count() or 1) // cpu_slots)
    return [
        Slot(d, i, cpu_threads if d == "cpu" else threads or 1)
        for i, (d, _) in enumerate(per_device)
    ]


def run_slot(slot: Slot, only: list[str] | None = None, burst: bool = False) -> None:
    """Entry point of one worker process."""
    from app.redis_conn import sync_client
    from app.registry.db import make_engine, make_sessionmaker
    from app.settings import get_settings
    from app.worker.main import Worker
    from app.worker.metrics import serve_slot

    settings = get_settings()
    logs.configure()
    tracing.setup("hanmo-worker")  # off unless OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT is set
    engine = make_engine(settings.resolved_database_url())
    worker = Worker(
        settings,
        slot.worker_id(os.getpid()),
        slot.device,
        slot.threads,
        make_sessionmaker(engine),
        sync_client(settings.resolved_redis_url()),
        only=set(only) if only else None,
    )
    worker.install_signal_handlers()
    serve_slot(worker, slot.index)  # GET /metrics on HANMO_WORKER_METRICS_PORT + slot index
    log.info("worker.start id=%s device=%s threads=%d", worker.id, slot.device, slot.threads)
    worker.run(burst=burst)
    log.info("worker.stop id=%s", worker.id)
    tracing.flush()


@dataclass(slots=True)
class Tended:
    """A slot's process as the pool tends it: None while it waits out its restart delay."""

    process: mp.process.BaseProcess | None
    started: float
    crashes: int = 0  # deaths in a row, each within restart_reset_s of its start
    restart_at: float = 0.0


def run_pool(
    settings: Settings, devices: list[str], replicas: int, only: list[str] | None = None
) -> None:
    """Start a process per slot and keep them alive until SIGTERM/SIGINT; a slot that keeps
    dying is restarted with a growing delay (restart_delay_s)."""
    context = mp.get_context("spawn")
    slots = plan_slots(devices, replicas, settings.intra_op_threads)
    tended = {s: Tended(_spawn(context, s, only), time.monotonic()) for s in slots}
    stopping = stop_on_signals()
    while not stopping.is_set():
        time.sleep(POLL_S)
        for slot, state in tended.items():
            if not stopping.is_set():
                _tend(context, slot, state, settings, only)
    processes = [s.process for s in tended.values() if s.process is not None]
    for process in processes:
        if process.is_alive() and process.pid:
            os.kill(process.pid, signal.SIGTERM)
    for process in processes:
        process.join(timeout=30)


def _tend(
    context: mp.context.SpawnContext,
    slot: Slot,
    state: Tended,
    settings: Settings,
    only: list[str] | None,
) -> None:
    """Notice the slot's death (and schedule its restart), or restart it when due."""
    now = time.monotonic()
    if state.process is not None:
        if state.process.is_alive():
            return
        up_s = now - state.started
        state.crashes = 1 if up_s >= settings.restart_reset_s else state.crashes + 1
        delay_s = restart_delay_s(
            state.crashes, settings.restart_backoff_s, settings.restart_backoff_max_s
        )
        log.error(
            "worker.died slot=%s exitcode=%s up_s=%.1f crashes=%d restart_in_s=%.2f",
            slot,
            state.process.exitcode,
            up_s,
            state.crashes,
            delay_s,
        )
        state.process, state.restart_at = None, now + delay_s
    if now >= state.restart_at:
        log.info("worker.restart slot=%s crashes=%d", slot, state.crashes)
        state.process, state.started = _spawn(context, slot, only), now


def _spawn(
    context: mp.context.SpawnContext, slot: Slot, only: list[str] | None
) -> mp.process.BaseProcess:
    process = context.Process(target=run_slot, args=(slot, only), name=f"hanmo-worker-{slot}")
    process.start()
    return process
