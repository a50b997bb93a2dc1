"""A real Redis Cluster for tests: three masters on loopback (Debian's redis-server 7), made
with `redis-cli --cluster create`, each in its own folder, stopped and removed after."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
from pathlib import Path

from tests.helpers import wait_until


class ThreeMasterCluster:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports = [_cluster_port() for _ in range(3)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> None:
        server = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if not server or not cli:  # `make system-deps` installs Debian's redis-server
            raise RuntimeError("redis-server and redis-cli (Redis 7) are needed on PATH")
        for port in self.ports:
            folder = self.directory / str(port)
            folder.mkdir(parents=True)
            self.processes.append(
                subprocess.Popen(
                    [
                        server,
                        "--port", str(port),
                        "--bind", "127.0.0.1",
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", str(folder / "nodes.conf"),
                        "--cluster-node-timeout", "2000",
                        "--dir", str(folder),
                        "--save", "",
                        "--appendonly", "no",
                        "--logfile", str(folder / "redis.log"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        for port in self.ports:
            wait_until(lambda p=port: self._cli(p, "ping") == "PONG", awaiting=f"redis {port}")
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for port in self.ports:
            wait_until(
                lambda p=port: "cluster_state:ok" in self._cli(p, "cluster", "info"),
                timeout_s=30,
                awaiting=f"cluster state ok on {port}",
            )

    def _cli(self, port: int, *command: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(port), *command], capture_output=True, text=True, timeout=10
        )
        return done.stdout.strip()

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too: Redis refuses ports over
    55535 in cluster mode, so the OS's ephemeral choice will not do."""
    while True:
        port = random.randint(20_000, 45_000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10_000))
        except OSError:
            continue
        return port
