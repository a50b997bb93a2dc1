"""The worker pool: one process per slot (device x replica), restarted when one dies."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import socket
import time
from dataclasses import dataclass

from app.settings import Settings

log = logging.getLogger("hanmo.worker")


@dataclass(frozen=True, slots=True)
class Slot:
    device: str
    index: int
    threads: int

    @property
    def worker_id(self) -> str:
        return f"{socket.gethostname()}-{self.device.replace(':', '')}-{self.index}"


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

    settings = get_settings()
    logging.basicConfig(
        level=os.environ.get("HANMO_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    engine = make_engine(settings.resolved_database_url())
    worker = Worker(
        settings,
        f"{slot.worker_id}-{os.getpid()}",
        slot.device,
        slot.threads,
        make_sessionmaker(engine),
        sync_client(settings.resolved_redis_url()),
        only=set(only) if only else None,
    )
    worker.install_signal_handlers()
    log.info("worker.start id=%s device=%s threads=%d", worker.id, slot.device, slot.threads)
    worker.run(burst=burst)
    log.info("worker.stop id=%s", worker.id)


def run_pool(
    settings: Settings, devices: list[str], replicas: int, only: list[str] | None = None
) -> None:
    """Start a process per slot and keep them alive until SIGTERM/SIGINT."""
    context = mp.get_context("spawn")
    slots = plan_slots(devices, replicas, settings.intra_op_threads)
    processes = {slot: _spawn(context, slot, only) for slot in slots}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        time.sleep(0.5)
        for slot, process in list(processes.items()):
            if not process.is_alive() and not stopping:
                log.error("worker.died slot=%s exitcode=%s; restarting", slot, process.exitcode)
                processes[slot] = _spawn(context, slot, only)
    for process in processes.values():
        if process.is_alive() and process.pid:
            os.kill(process.pid, signal.SIGTERM)
    for process in processes.values():
        process.join(timeout=30)


def _spawn(
    context: mp.context.SpawnContext, slot: Slot, only: list[str] | None
) -> mp.process.BaseProcess:
    process = context.Process(target=run_slot, args=(slot, only), name=f"hanmo-worker-{slot}")
    process.start()
    return process
