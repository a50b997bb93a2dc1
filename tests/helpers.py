"""Real servers for tests: a live uvicorn api, workers in threads or processes, graphs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
import numpy as np
import onnx
import uvicorn
from onnx import TensorProto, helper, numpy_helper
from pydantic import SecretStr

from app.api.main import create_app
from app.queue import keys
from app.redis_conn import sync_client
from app.registry.db import make_engine, make_sessionmaker
from app.registry.tables import Base
from app.settings import Settings
from app.worker.main import Worker
from training.export import write_card

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(  # type: ignore[no-untyped-def]
    predicate,
    timeout_s: float = 10.0,
    interval_s: float = 0.05,
    *,
    awaiting: str = "",
    seen: Callable[[], object] | None = None,
) -> None:
    """Poll `predicate` until it holds; past `timeout_s` (a safety net), fail saying what was
    awaited and, with `seen`, what was last seen."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            what = awaiting or getattr(predicate, "__name__", "condition")
            last = f"; last seen: {seen()!r}" if seen is not None else ""
            raise AssertionError(f"{what}: not met within {timeout_s}s{last}")
        time.sleep(interval_s)


def wait_for_progress(
    awaiting: str,
    observe: Callable[[], T],
    done: Callable[[T], bool],
    stall_s: float = 120.0,
    interval_s: float = 0.1,
) -> T:
    """Observe until `done(observed)`, as long as it takes while what is observed keeps
    changing; fail only when it has not changed for `stall_s` (a slow machine is slow, not
    stuck). Returns the last observation."""
    seen = observe()
    changed_at = time.monotonic()
    while not done(seen):
        time.sleep(interval_s)
        now = observe()
        if now != seen:
            seen, changed_at = now, time.monotonic()
        elif time.monotonic() - changed_at > stall_s:
            raise AssertionError(f"{awaiting}: nothing changed for {stall_s:.0f}s; seen {seen!r}")
    return seen


def api_ready(base_url: str) -> bool:
    """Whether the api at `base_url` answers /readyz with 200 (False while it is not up)."""
    try:
        return httpx.get(f"{base_url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def live_api(settings: Settings) -> Iterator[httpx.Client]:
    """uvicorn serving create_app(settings) on a free port, with a client bound to it. The
    socket is bound here and handed over, so no other process can take the port between."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        wait_until(
            lambda: server.started or not thread.is_alive(),
            timeout_s=120,
            awaiting="the live api to start",
        )
        assert server.started, "the live api's server thread ended before it started"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


@contextmanager
def worker_thread(
    settings: Settings, worker_id: str = "test-worker", *, serving: bool = True
) -> Iterator[Worker]:
    """A real Worker (real Redis, real ONNX Runtime) running in a thread of this process; with
    `serving`, yielded once it has loaded a model, else once it beats (an empty registry)."""
    engine = make_engine(settings.resolved_database_url())
    worker = Worker(
        settings, worker_id, "cpu", 1, make_sessionmaker(engine), sync_client(settings.redis_url)
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(
            lambda: (
                (_heartbeat_lists_models(worker) if serving else _beats(worker))
                or not thread.is_alive()
            ),
            timeout_s=120,
            awaiting=f"worker thread {worker_id} to load a model and beat",
        )
        assert thread.is_alive(), f"worker thread {worker_id} ended before it served"
        yield worker
    finally:
        worker.stopping.set()  # it finishes the batch in hand first
        thread.join(timeout=120)
        engine.dispose()
    # one left running would read the next test's jobs from the same streams
    assert not thread.is_alive(), f"worker thread {worker_id} still runs 120s after its stop"


def _beats(worker: Worker) -> bool:
    return bool(worker.redis.exists(keys.worker(worker.id)))


def _heartbeat_lists_models(worker: Worker) -> bool:
    """The worker has loaded a model and its heartbeat in Redis (what /readyz and the
    router read) says so: `worker.models` alone fills in before the first beat."""
    if not worker.models:
        return False
    models = worker.redis.hget(keys.worker(worker.id), "models")
    return bool(models) and bool(json.loads(models))


def fresh_settings(tmp_path: Path, redis_url: str, database_url: str) -> Settings:
    """Flush the test Redis database, empty every registry table, and return fast settings
    with `home` under `tmp_path` (for fixtures of a wider scope than one test)."""
    client = sync_client(redis_url)
    client.flushdb()
    client.close()
    engine = make_engine(database_url)
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    engine.dispose()
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        redis_url=redis_url,
        registry_cache_ttl_s=0,
        block_ms=100,
        visibility_timeout_ms=1500,
        heartbeat_s=0.3,
        heartbeat_ttl_s=3,
        registry_poll_s=0.3,
        default_timeout_ms=20_000,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process the same settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):  # str() of a secret is its mask
            value = value.get_secret_value()
        if value is not None:
            env[f"HANMO_{name.upper()}"] = str(value)
    env["PYTHONPATH"] = str(ROOT)
    return env


def slow_sampler(
    directory: Path,
    name: str = "slow-sampler",
    layers: int = 600,
    width: int = 512,
    **signature: object,
) -> Path:
    """A real but deliberately heavy ONNX sampler (one weight reused `layers` times), so a
    batch takes long enough to kill or stop a worker in the middle of it; `signature` adds
    card fields (e.g. max_batch_rows)."""
    rng = np.random.default_rng(0)
    w_in = numpy_helper.from_array(
        (rng.standard_normal((16, width)) / 4).astype(np.float32), "w_in"
    )
    w = numpy_helper.from_array(
        (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32), "w"
    )
    w_out = numpy_helper.from_array(
        (rng.standard_normal((width, 784)) / np.sqrt(width)).astype(np.float32), "w_out"
    )
    shape = numpy_helper.from_array(np.array([-1, 28, 28], dtype=np.int64), "shape")
    nodes = [helper.make_node("MatMul", ["z", "w_in"], ["h0"])]
    for i in range(layers):
        nodes.append(helper.make_node("MatMul", [f"h{i}", "w"], [f"m{i}"]))
        nodes.append(helper.make_node("Tanh", [f"m{i}"], [f"h{i + 1}"]))
    nodes += [
        helper.make_node("MatMul", [f"h{layers}", "w_out"], ["o"]),
        helper.make_node("Sigmoid", ["o"], ["flat"]),
        helper.make_node("Reshape", ["flat", "shape"], ["x"]),
    ]
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 16])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 28, 28])],
        [w_in, w, w_out, shape],
    )
    return save_sampler(graph, directory, name, **signature)


def save_sampler(graph: onnx.GraphProto, directory: Path, name: str, **signature: object) -> Path:
    """A hand-built graph (z [n, 16] -> x [n, 28, 28]) saved as a sampler with its card;
    `signature` adds card fields (e.g. max_batch_rows)."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(model, directory / "model.onnx")
    write_card(
        directory,
        name=name,
        kind="sampler",
        fmt="onnx",
        graphs={"sample": ("model.onnx", ["z"], ["x"])},
        signature={
            "z_dim": 16,
            "num_labels": None,
            "sample_shape": [28, 28],
            "image": True,
            **signature,
        },
        code_revision="test",
    )
    return directory


class ThrowawayPostgres:
    """A PostgreSQL cluster of the test's own (initdb in a temporary directory, its own port),
    so a test can stop and start the database under a running api and worker. The directory
    is a fresh one under /tmp: as root, the cluster runs as `postgres`, which cannot enter
    pytest's root-only temporary directories."""

    def __init__(self) -> None:
        import tempfile

        directory = Path(tempfile.mkdtemp(prefix="hanmo-pg-"))
        self.directory = directory
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not found:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bin = found[-1].parent
        self.data = directory / "pgdata"
        self.sockets = directory / "pgsock"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        for path in (self.data, self.sockets):
            path.mkdir(parents=True)
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            import shutil

            for path in (directory, self.data, self.sockets):
                shutil.chown(path, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-w", "-l",
                  str(self.data / "log"), "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        import shutil

        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
