"""How hanmo's tiers scale across processes and (simulated) hosts, issue 47's benchmark.

The tiny MLP sampler (`training/tiny_sampler.py`), `POST /v1/models/tiny-sampler/sample` with
bench/serving.py's body, loaded by `hey` at concurrency 64 for `SCALING_SECONDS` (8) s after
50 checked requests and a 2 s warm-up at the same concurrency:

* part `local`, one box: `hanmo api` with 1, 2 and 4 processes (HANMO_API_WORKERS) times
  `hanmo worker --device cpu --replicas 1|2`, no pinning, every other setting at its default
  (so one worker process gets two ONNX Runtime intra-op threads and two get one each), and two
  more cells, 1 and 4 api processes with one worker process of one thread
  (`intra_op_threads=1`), which tell process count and thread count apart;
* part `netns`, separate hosts simulated with network namespaces on a bridge
  (10.213.47.0/24): a "redis host", an "api host" and a "worker host", each started with
  `ip netns exec <ns> taskset -c <core>`, and hey in the root namespace, pinned too. This
  machine has two cores, so the four roles share them (LAYOUT; `--layout` changes it). Each
  host runs as a one-core host would: `intra_op_threads=1`. 1 and 2 api processes times 1 and
  2 worker processes.

Both parts use one Debian redis-server 7 over TCP (append-only file on, fsync every second, as
hanmo's embedded Redis) and a SQLite registry in a shared file. Per cell it prints req/s (2xx),
p50, p99, the non-2xx and transport failures, and the CPU each tier used during the measured
run (from /proc/<pid>/stat of every process of that tier, in cores: 1.0 = one core busy), hey's
own CPU, what the rest of the machine used ("other": neighbours) and the steal time, and how
busy each core was. Namespaces, links and processes are removed however a run ends, and the
leftovers of an aborted run at start. Run as root: `.venv/bin/python -m bench.scaling
[--part local|netns|all]`. Figures: bench/out/scaling.json, bench/README.md."""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

from redis.exceptions import ConnectionError as RedisConnectionError

from app.redis_conn import sync_client
from app.worker.pool import plan_slots
from bench.hey import INSTALL_HINT, LoadResult, find_hey, run_hey
from bench.serving import (
    HTTP_BODY,
    ROOT,
    Bench,
    export_model,
    flush,
    free_port,
    machine,
    private_hanmo,
    serving,
    warm_up,
)

CONCURRENCY = 64
SECONDS = float(os.environ.get("SCALING_SECONDS", "8"))
WARM_UP_S = 2.0
# (api processes, worker processes, intra_op_threads: 0 is the default, cores / processes);
# the last two: one worker process with one ONNX Runtime thread instead of two
LOCAL_GRID = (
    (1, 1, 0),
    (2, 1, 0),
    (4, 1, 0),
    (1, 2, 0),
    (2, 2, 0),
    (4, 2, 0),
    (1, 1, 1),
    (4, 1, 1),
)
NETNS_GRID = ((1, 1), (2, 1), (1, 2), (2, 2))  # intra_op_threads=1: a one-core host's default
REDIS_SERVER = "/usr/bin/redis-server"  # Debian's, Redis 7
OUT_JSON = ROOT / "bench" / "out" / "scaling.json"
TICK_S = 1 / os.sysconf("SC_CLK_TCK")
TIERS = ("api", "worker", "redis")

# simulated hosts: one namespace each, on a bridge in the root namespace (the client's side)
NETNS_PREFIX = "hanmo-scaling-"
LINK_PREFIX = "hsc-"  # the bridge and the root ends of the veth pairs
BRIDGE = f"{LINK_PREFIX}br0"
SUBNET = "10.213.47"
CLIENT_ADDRESS = f"{SUBNET}.1"  # the bridge's address: hey runs in the root namespace
OCTETS = {"redis": 2, "api": 3, "worker": 4}
API_PORT = 8000
# role -> core. The api alone on core 0; Redis, the worker and the load generator on core 1
LAYOUT = {"api": 0, "redis": 1, "worker": 1, "client": 1}


@dataclass(frozen=True, slots=True)
class Host:
    """A simulated host: a network namespace with one address, its processes on one core."""

    role: str
    core: int

    @property
    def netns(self) -> str:
        return f"{NETNS_PREFIX}{self.role}"

    @property
    def address(self) -> str:
        return f"{SUBNET}.{OCTETS[self.role]}"

    def wrapper(self) -> list[str]:
        """The command prefix that runs a program on this host."""
        return ["ip", "netns", "exec", self.netns, "taskset", "-c", str(self.core)]


@dataclass(frozen=True, slots=True)
class Cell:
    """One configuration under load: hey's figures and where the CPU went."""

    part: str
    api_processes: int
    worker_processes: int
    threads: int  # ONNX Runtime intra-op threads of each worker process
    load: LoadResult
    cpu: dict[str, float]  # api, worker, redis, hey, irq, other, steal -> cores
    core_busy: list[float]  # per core, 0..1 (steal excluded)
    loadavg_before: float
    core_other: list[float] | None = None  # pinned runs: per core, busy less our roles there


# -- /proc accounting ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    ticks: dict[int, tuple[str, int]]  # pid -> (tier, utime + stime)
    cores: list[tuple[int, int, int]]  # per core: (busy, irq + softirq, steal) ticks
    total: tuple[int, int, int]  # every core: (busy, irq + softirq, steal)
    children_s: float  # CPU of this process's reaped children (hey)
    self_s: float


def tier_of(command: str) -> str | None:
    if "redis-server" in command:
        return "redis"
    return next((t for t in ("api", "worker") if f"app.cli {t}" in command), None)


def processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent, utime + stime ticks, command line) for every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # comm may hold spaces
        table[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), command)
    return table


def tier_ticks() -> dict[int, tuple[str, int]]:
    """The CPU ticks of every process below this one that belongs to a tier: this process's
    children by command line (`ip netns exec` and `taskset` exec, so the pid is the
    program's), and their descendants (uvicorn's and the pool's spawned processes)."""
    table = processes()
    below: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        below.setdefault(parent, []).append(pid)
    found: dict[int, tuple[str, int]] = {}
    queue = [(pid, tier_of(table[pid][2])) for pid in below.get(os.getpid(), [])]
    while queue:
        pid, tier = queue.pop()
        if tier is None:
            continue
        found[pid] = (tier, table[pid][1])
        queue += [(child, tier) for child in below.get(pid, [])]
    return found


def cpu_ticks() -> list[tuple[int, int, int]]:
    """(busy, irq + softirq, steal) ticks: every core first, then each core, from /proc/stat.
    Interrupt time (the network stack's softirqs, our traffic's among them) is charged to no
    process, so it is counted apart from "other"."""
    rows = []
    for line in Path("/proc/stat").read_text().splitlines():
        if not line.startswith("cpu"):
            break
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, line.split()[1:9])
        rows.append((user + nice + system + irq + softirq, irq + softirq, steal))
    return rows


def snapshot() -> Snapshot:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = os.times()
    total, *cores = cpu_ticks()
    return Snapshot(
        time.monotonic(),
        tier_ticks(),
        cores,
        total,
        children.ru_utime + children.ru_stime,
        own.user + own.system,
    )


def usage(before: Snapshot, after: Snapshot) -> tuple[dict[str, float], list[tuple[float, float]]]:
    """Cores used per tier, by hey, by interrupts, by everything else, and stolen; each core's
    (busy, interrupt) shares."""
    wall = after.at - before.at
    cpu = dict.fromkeys(TIERS, 0.0)
    for pid, (tier, ticks) in after.ticks.items():
        cpu[tier] += (ticks - before.ticks.get(pid, (tier, 0))[1]) * TICK_S / wall
    cpu["hey"] = (after.children_s - before.children_s) / wall
    cpu["irq"] = (after.total[1] - before.total[1]) * TICK_S / wall
    ours = sum(cpu.values()) + (after.self_s - before.self_s) / wall
    busy = (after.total[0] - before.total[0]) * TICK_S / wall
    cpu["other"] = max(0.0, busy - ours)
    cpu["steal"] = (after.total[2] - before.total[2]) * TICK_S / wall
    cores = [
        ((a[0] - b[0]) * TICK_S / wall, (a[1] - b[1]) * TICK_S / wall)
        for a, b in zip(after.cores, before.cores, strict=True)
    ]
    return cpu, cores


# -- load ------------------------------------------------------------------------------------


def measure(
    hey: str,
    base_url: str,
    bench: Bench,
    grid: tuple[str, int, int, int],
    layout: dict[str, int] | None = None,
) -> Cell:
    """Warm up (checked answers, then hey for WARM_UP_S), then hey for SECONDS, accounted.
    `grid`: part, api processes, worker processes, threads of each. With the `layout` of
    pinned roles, each core's "other" is its busy share less interrupts and our roles there."""
    url = f"{base_url}/v1/models/{bench.served.model}/sample"
    warm_up(url)
    run_hey(hey, url, HTTP_BODY, CONCURRENCY, WARM_UP_S)
    loadavg = os.getloadavg()[0]
    before = snapshot()
    load = run_hey(hey, url, HTTP_BODY, CONCURRENCY, SECONDS)
    cpu, cores = usage(before, snapshot())
    other = None
    if layout is not None:
        ours = {**cpu, "client": cpu["hey"]}
        other = [
            max(0.0, busy - irq - sum(ours[r] for r, c in layout.items() if c == core))
            for core, (busy, irq) in enumerate(cores)
        ]
    return Cell(*grid, load, cpu, [busy for busy, _ in cores], loadavg, other)


def columns(cell: Cell) -> list[tuple[str, str]]:
    """(header, value) pairs of one table row: the load, the cores each tier used, the CPU
    milliseconds each tier spent per answered request (a figure neighbours disturb less than
    req/s), how busy each core was and, when pinned, what the rest of the machine took of it."""
    r, cpu = cell.load, cell.cpu
    per_request = {t: cpu[t] * 1000 / r.ok_per_s if r.ok_per_s else 0.0 for t in TIERS}
    row = [
        ("api", str(cell.api_processes)),
        ("wrk", str(cell.worker_processes)),
        ("thr", str(cell.threads)),
        ("req/s", f"{r.ok_per_s:,.0f}"),
        ("p50 ms", "-" if r.p50_ms is None else f"{r.p50_ms:.0f}"),
        ("p99 ms", "-" if r.p99_ms is None else f"{r.p99_ms:.0f}"),
        ("errors", r.describe_failures()),
        *((f"{k} cores", f"{cpu[k]:.2f}") for k in (*TIERS, "hey", "irq", "other", "steal")),
        *((f"{t} ms/req", f"{ms:.2f}") for t, ms in per_request.items()),
        ("busy/core", " ".join(f"{c:.2f}" for c in cell.core_busy)),
    ]
    if cell.core_other is not None:
        row.append(("other/core", " ".join(f"{c:.2f}" for c in cell.core_other)))
    return [*row, ("load", f"{cell.loadavg_before:.1f}")]


def print_row(cell: Cell, header: bool) -> None:
    row = columns(cell)
    widths = [max(len(name), len(value)) for name, value in row]
    if header:
        print("  " + "  ".join(f"{n:>{w}}" for (n, _), w in zip(row, widths, strict=True)))
    print("  " + "  ".join(f"{v:>{w}}" for (_, v), w in zip(row, widths, strict=True)), flush=True)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


@contextmanager
def redis_server(
    directory: Path, bind: str, port: int, wrapper: Sequence[str] = ()
) -> Iterator[str]:
    """Debian's redis-server on `bind:port` (run through `wrapper`); yields its URL."""
    directory.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [
            *wrapper,
            REDIS_SERVER,
            *("--bind", bind, "--port", str(port), "--protected-mode", "no"),
            *("--dir", str(directory), "--logfile", str(directory / "redis.log")),
            *("--appendonly", "yes", "--appendfsync", "everysec", "--save", ""),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://{bind}:{port}/0"
    try:
        client = sync_client(url)
        for _ in range(100):
            try:
                client.ping()
                break
            except (RedisConnectionError, OSError):
                if server.poll() is not None:
                    raise RuntimeError(f"redis-server exited; see {directory}") from None
                time.sleep(0.1)
        else:
            raise RuntimeError(f"redis-server did not answer in 10 s; see {directory}")
        client.close()
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


# -- part 1: one box -------------------------------------------------------------------------


def run_local(hey: str, tmp: Path, model_dir: Path) -> list[Cell]:
    print(f"\npart 1, one box, no pinning: hey c={CONCURRENCY}, {SECONDS:g} s, POST {HTTP_BODY}")
    print(f"  {uptime()}")
    cells: list[Cell] = []
    with (
        redis_server(tmp / "redis", "127.0.0.1", free_port()) as redis_url,
        private_hanmo(tmp, model_dir, redis_url) as bench,
    ):
        for api, workers, threads in LOCAL_GRID:
            settings = bench.settings.model_copy(
                update={"port": free_port(), "api_workers": api, "intra_op_threads": threads}
            )
            resolved = plan_slots(["cpu"], workers, threads)[0].threads
            flush(settings)
            logs = tmp / "logs" / f"{api}x{workers}x{threads}"
            with serving(settings, logs, replicas=workers) as base:
                cell = measure(hey, base, bench, ("local", api, workers, resolved))
            print_row(cell, header=not cells)
            cells.append(cell)
    print(f"  {uptime()}")
    return cells


# -- part 2: simulated hosts -----------------------------------------------------------------


def ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def remove_network() -> None:
    """Kill what runs in this bench's namespaces, delete them, its bridge and its links: the
    state of this run or the leftovers of one that was killed."""
    for line in ip("netns", "list", check=False).splitlines():
        netns = line.split()[0] if line.split() else ""
        if not netns.startswith(NETNS_PREFIX):
            continue
        for pid in ip("netns", "pids", netns, check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        ip("netns", "delete", netns, check=False)
    for line in ip("-o", "link", "show", check=False).splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(LINK_PREFIX):
            ip("link", "delete", name, check=False)


def make_network(hosts: Sequence[Host]) -> None:
    """A bridge in the root namespace with CLIENT_ADDRESS, and per host a namespace joined to
    it by a veth pair (its end named eth0)."""
    ip("link", "add", BRIDGE, "type", "bridge")
    ip("addr", "add", f"{CLIENT_ADDRESS}/24", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")
    for host in hosts:
        link = f"{LINK_PREFIX}{host.role}"
        ip("netns", "add", host.netns)
        ip("-n", host.netns, "link", "set", "lo", "up")
        ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        ip("link", "set", link, "master", BRIDGE, "up")
        ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip("-n", host.netns, "link", "set", "eth0", "up")


@contextmanager
def pinned(core: int) -> Iterator[None]:
    """This process (and so hey, its child) on one core."""
    was = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, was)


def run_netns(hey: str, tmp: Path, model_dir: Path, layout: dict[str, int]) -> list[Cell]:
    hosts = {role: Host(role, layout[role]) for role in OCTETS}
    where = ", ".join(f"{role} on core {core}" for role, core in layout.items())
    print(f"\npart 2, simulated hosts (namespaces on a bridge, {SUBNET}.0/24): {where}")
    print(f"  hey c={CONCURRENCY}, {SECONDS:g} s, POST {HTTP_BODY}; intra_op_threads=1")
    print(f"  {uptime()}")
    cells: list[Cell] = []
    remove_network()
    try:
        make_network(list(hosts.values()))
        redis_host = hosts["redis"]
        with (
            pinned(layout["client"]),
            redis_server(
                tmp / "redis", redis_host.address, 6379, redis_host.wrapper()
            ) as redis_url,
            private_hanmo(tmp, model_dir, redis_url) as bench,
        ):
            wrappers = {"api": hosts["api"].wrapper(), "worker": hosts["worker"].wrapper()}
            for api, workers in NETNS_GRID:
                settings = bench.settings.model_copy(
                    update={
                        "host": hosts["api"].address,
                        "port": API_PORT,
                        "api_workers": api,
                        "intra_op_threads": 1,
                    }
                )
                flush(settings)
                logs = tmp / "logs" / f"{api}x{workers}"
                with serving(settings, logs, replicas=workers, wrappers=wrappers) as base:
                    cell = measure(hey, base, bench, ("netns", api, workers, 1), layout)
                print_row(cell, header=not cells)
                cells.append(cell)
    finally:
        remove_network()
    print(f"  {uptime()}")
    return cells


# -- main ------------------------------------------------------------------------------------


def parse_layout(text: str) -> dict[str, int]:
    """`api=0,worker=1,redis=1,client=1` -> a layout; roles not named keep LAYOUT's core."""
    layout = dict(LAYOUT)
    for item in filter(None, text.split(",")):
        role, _, core = item.partition("=")
        if role not in layout:
            raise argparse.ArgumentTypeError(f"unknown role {role!r}: {', '.join(layout)}")
        layout[role] = int(core)
    return layout


def _exit(signum: int, _frame: Any) -> NoReturn:
    sys.exit(128 + signum)  # SystemExit: every `finally` runs, namespaces are removed


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__)
    parser.add_argument("--part", choices=("local", "netns", "all"), default="all")
    parser.add_argument(
        "--layout",
        type=parse_layout,
        default=LAYOUT,
        help="cores of the simulated hosts, e.g. api=0,worker=1,redis=1,client=1",
    )
    args = parser.parse_args()
    hey = find_hey()
    if hey is None:
        sys.exit(INSTALL_HINT)
    if args.part != "local" and os.geteuid() != 0:
        sys.exit("part netns makes network namespaces: run as root (or --part local)")
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGHUP, _exit)
    report: dict[str, Any] = {"machine": machine(), "uptime_before": uptime()}
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="hanmo-scaling-") as name:
        tmp = Path(name)
        model_dir = export_model(tmp / "tiny-sampler")
        if args.part in ("local", "all"):
            cells += run_local(hey, tmp / "local", model_dir)
        if args.part in ("netns", "all"):
            cells += run_netns(hey, tmp / "netns", model_dir, args.layout)
            report["layout"] = args.layout
    report |= {"uptime_after": uptime(), "seconds": SECONDS, "concurrency": CONCURRENCY}
    report["cells"] = [asdict(c) for c in cells]
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {OUT_JSON.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
