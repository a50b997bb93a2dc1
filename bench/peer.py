"""hanmo side by side with LitServe and Ray Serve on the tiny MLP sampler (16 -> 256 -> 784),
loaded by `hey`, and the ceiling: a bare endpoint answering the same bytes.

All three serve the same ONNX file with one ONNX Runtime intra-op thread, one HTTP server
process and one inference process (Ray Serve: its proxy and one replica, on a private 2-CPU
local cluster), no CPU pinning, and answer the same request with the same JSON floats (hanmo's
`format: array`; the peers draw the noise with hanmo's generator, and their answers are checked
equal to hanmo's before any timing). Three configurations:

* no batching: hanmo `max_batch_rows=1`; LitServe `max_batch_size=1`; Ray Serve no `serve.batch`;
* batch 16 / 5 ms: hanmo `max_batch_rows=16, max_wait_ms=5`; LitServe `max_batch_size=16,
  batch_timeout=0.005`; Ray Serve `serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)`;
* defaults: each system as it ships (hanmo: 256 rows, no wait; the peers: no batching).

The ceiling (bench/bare_app.py): one uvicorn process with a bare Starlette endpoint returning
hanmo's answer to the same request, byte for byte (checked), encoded per request with orjson
from a NumPy array; hanmo's throughput is printed as a fraction of it.

Concurrency 1, 16, 64, 256 (`PEER_LEVELS`), `PEER_SECONDS` (8) s each. Writes
bench/out/peer.json and the chart docs/bench/peer.png (throughput against p99). Needs `hey` and
the peers' venvs: `make peer-tools`, then `.venv/bin/python -m bench.peer`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from bench.hey import INSTALL_HINT, LoadResult, find_hey, run_hey
from bench.serving import (
    ROOT,
    bench_raw,
    export_model,
    free_port,
    private_hanmo,
    serving,
)

PEER_PYTHON = ROOT / ".venv-peer" / "bin" / "python"
RAY_PYTHON = ROOT / ".venv-ray" / "bin" / "python"
SECONDS = float(os.environ.get("PEER_SECONDS", "8"))
LEVELS = tuple(int(c) for c in os.environ.get("PEER_LEVELS", "1,16,64,256").split(","))
TARGET_LEVEL = 64  # the targets: hanmo's req/s at c=64 against each system's
BODY = '{"n": 1, "seed": 7, "format": "array"}'
CONFIGS: list[tuple[str, dict[str, Any], tuple[int, float]]] = [
    ("no batching", {"max_batch_rows": 1, "max_wait_ms": 0.0}, (1, 0.0)),
    ("batch 16 / 5 ms", {"max_batch_rows": 16, "max_wait_ms": 5.0}, (16, 0.005)),
    ("defaults", {}, (1, 0.0)),
]
OUT_JSON = ROOT / "bench" / "out" / "peer.json"
CHART = ROOT / "docs" / "bench" / "peer.png"


@dataclass(frozen=True)
class PeerSystem:
    """A peer server: its venv's python runs `script MODEL_DIR PORT MAX_BATCH WAIT_S 1 [TEMP]`."""

    key: str  # its runs' key in bench/out/*.json
    label: str  # with its version
    short: str
    python: Path
    script: Path
    temp_dir: bool = False  # takes a private temporary folder (Ray's cluster files)
    group_signal: bool = True  # SIGTERM its process group (else the server alone, which
    # shuts down what it started)


LITSERVE = PeerSystem(
    "litserve", "LitServe 0.2.19", "LitServe", PEER_PYTHON, ROOT / "bench" / "litserve_app.py"
)
RAY = PeerSystem(
    "ray",
    "Ray Serve 2.60.0",
    "Ray Serve",
    RAY_PYTHON,
    ROOT / "bench" / "ray_app.py",
    temp_dir=True,
    group_signal=False,
)
PEERS = (LITSERVE, RAY)


@dataclass
class Started:
    """A running peer: the server process and the temporary folder it was given."""

    system: PeerSystem
    child: subprocess.Popen[bytes]
    temp: Path | None = None
    family: list[psutil.Process] = field(default_factory=list)


def start_peer(
    system: PeerSystem,
    model_dir: Path,
    port: int,
    batch: int,
    timeout: float,
    body: str = BODY,
) -> Started:
    """`system` on `model_dir` (its card's kind picks the API), once it answers `body`."""
    # the repository, and the client's folder: the api modules it borrows import the wire
    # schemas from hanmo_client (pydantic only, which each peer's FastAPI or Starlette brings)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "clients" / "python")]),
    }
    args = [str(model_dir), str(port), str(batch), str(timeout), "1"]
    temp = None
    if system.temp_dir:  # short: Ray's socket paths live under it
        temp = Path(tempfile.mkdtemp(prefix="hanmo-peer-", dir="/tmp"))
        args.append(str(temp))
    started = Started(
        system,
        subprocess.Popen(
            [str(system.python), str(system.script), *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: `stop` ends its workers too
        ),
        temp,
    )
    try:
        wait_answering(started.child, f"http://127.0.0.1:{port}/predict", body, system.label)
    except BaseException:
        stop(started)
        raise
    return started


def wait_answering(
    child: subprocess.Popen[bytes], url: str, body: str, label: str, seconds: float = 120
) -> None:
    """Return once `url` answers `body` with a 200; raise if `child` exits or `seconds` pass."""
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=5) as http:
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise RuntimeError(f"{label} exited during start-up")
            try:
                answer = http.post(url, content=body, headers={"Content-Type": "application/json"})
                if answer.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
    raise RuntimeError(f"{label} did not come up in {seconds:g} s")


def stop(started: Started) -> None:
    """End the peer and every process it spawned. Terminating LitServe's server alone left its
    inference workers running (found at 7-47% CPU each, minutes later, skewing the runs); Ray's
    actors run in sessions of their own. So the server's descendants are listed first, the
    server (or its group) is asked to stop, and whichever of them outlives it is killed."""
    child = started.child
    with contextlib.suppress(psutil.Error):
        started.family = psutil.Process(child.pid).children(recursive=True)
    try:
        if started.system.group_signal:
            os.killpg(child.pid, signal.SIGTERM)
        else:
            child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)  # workers that outlived the server
    if child.poll() is None:
        child.kill()
    child.wait()
    for process in started.family:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(started.family, timeout=10)
    if started.temp is not None:
        shutil.rmtree(started.temp, ignore_errors=True)


def same_answers(hanmo_url: str, peer_url: str) -> float:
    """The largest difference between the two systems' samples over a few seeds (0 expected)."""
    worst = 0.0
    with httpx.Client(timeout=30) as http:
        for seed in (1, 7, 12345):
            body = {"n": 1, "seed": seed, "format": "array"}
            a = np.asarray(http.post(hanmo_url, json=body).json()["samples"][0], np.float32)
            b = np.asarray(http.post(peer_url, json=body).json()["samples"][0], np.float32)
            if a.shape != b.shape:
                raise RuntimeError(f"shapes differ: {a.shape} vs {b.shape}")
            worst = max(worst, float(np.abs(a - b).max()))
    return worst


def sweep(
    hey: str, url: str, body: str = BODY, levels: tuple[int, ...] = LEVELS
) -> list[LoadResult]:
    with httpx.Client(timeout=60) as http:  # warm up
        for _ in range(20):
            http.post(url, content=body, headers={"Content-Type": "application/json"})
    return [run_hey(hey, url, body, level, SECONDS) for level in levels]


def compare(
    hey: str,
    model_dir: Path,
    url_path: str,
    body: str,
    levels: tuple[int, ...],
    check: Callable[[str, str], float],
    tmp: Path,
    label: str,
    peers: tuple[PeerSystem, ...] = PEERS,
) -> tuple[dict[str, dict[str, list[dict[str, Any]]]], dict[str, dict[str, float]]]:
    """hanmo and each of `peers` on `model_dir` under each of CONFIGS: first, with hanmo up,
    each peer in turn and `check(hanmo's URL, the peer's URL)` (the largest difference between
    their answers); then each system swept alone. Returns the runs by configuration and system,
    and the differences by configuration and peer."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    differences: dict[str, dict[str, float]] = {}
    for name, knobs, (batch, timeout) in CONFIGS:
        slug = f"{label}-{name.replace(' ', '-').replace('/', '')}"
        differences[name] = {}
        peer_port = free_port()
        peer_url = f"http://127.0.0.1:{peer_port}/predict"
        with private_hanmo(tmp / slug, model_dir) as bench:
            settings = bench.settings.model_copy(
                update={**knobs, "intra_op_threads": 1, "port": free_port()}
            )
            with serving(settings, tmp / "logs" / slug) as base:
                url = f"{base}{url_path}"
                for system in peers:  # one peer at a time, stopped before any load
                    peer = start_peer(system, model_dir, peer_port, batch, timeout, body)
                    try:
                        differences[name][system.key] = check(url, peer_url)
                    finally:
                        stop(peer)
                runs[name] = {"hanmo": [asdict(r) for r in sweep(hey, url, body, levels)]}
        for system in peers:
            peer = start_peer(system, model_dir, peer_port, batch, timeout, body)
            try:
                runs[name][system.key] = [asdict(r) for r in sweep(hey, peer_url, body, levels)]
            finally:
                stop(peer)
        report(f"{label}: {name}", runs[name], body, peers)
        print(f"  largest difference from hanmo's answers: {_differences(differences[name])}")
    return runs, differences


def _differences(by_peer: dict[str, float]) -> str:
    labels = {system.key: system.label for system in PEERS}
    return ", ".join(f"{labels.get(key, key)} {value:g}" for key, value in by_peer.items())


def ceiling(
    hey: str, answer: bytes, body: str, levels: tuple[int, ...], tmp: Path
) -> list[LoadResult]:
    """The bare endpoint (bench/bare_app.py) answering `answer` (hanmo's bytes for `body`),
    checked byte for byte, then swept."""
    (tmp / "answer.json").write_bytes(answer)
    port = free_port()
    url = f"http://127.0.0.1:{port}/predict"
    child = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log"],
        cwd=ROOT,
        env={**os.environ, "HANMO_BARE_ANSWER": str(tmp / "answer.json")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    started = Started(
        PeerSystem("bare", "bare endpoint", "bare", Path(sys.executable), ROOT), child
    )
    try:
        wait_answering(child, url, body, "the bare endpoint", 30)
        bare = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
        if bare.content != answer:
            raise RuntimeError("the bare endpoint's bytes differ from hanmo's answer")
        return sweep(hey, url, body, levels)
    finally:
        stop(started)


def hanmo_answer(url: str, body: str = BODY) -> bytes:
    """hanmo's answer to `body`, as bytes."""
    answer = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=30)
    answer.raise_for_status()
    return answer.content


def main() -> None:
    hey = find_hey()
    if hey is None:
        sys.exit(INSTALL_HINT)
    for system in PEERS:
        if not system.python.exists():
            sys.exit(f"{system.python} missing: run `make peer-tools`")
    answers: list[bytes] = []

    def check(hanmo_url: str, peer_url: str) -> float:
        if not answers:  # hanmo's bytes, for the bare endpoint
            answers.append(hanmo_answer(hanmo_url))
        return same_answers(hanmo_url, peer_url)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model_dir = export_model(tmp / "model")
        raw = bench_raw(model_dir / "model.onnx", [1], 1)
        results, checks = compare(
            hey,
            model_dir,
            "/v1/models/tiny-sampler/sample",
            BODY,
            LEVELS,
            check,
            tmp,
            "tiny-sampler",
        )
        bare = ceiling(hey, answers[0], BODY, LEVELS, tmp)
    report_ceiling(bare, results)
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(
        json.dumps(
            {
                "raw_batch1_p50_ms": raw.batch1_p50_ms,
                "max_abs_diff": checks,
                "runs": results,
                "bare_endpoint": [asdict(r) for r in bare],
            },
            indent=2,
        )
    )
    chart(results, [asdict(r) for r in bare])
    worst = max(value for by_peer in checks.values() for value in by_peer.values())
    print(f"\nraw in-process batch-1 p50: {raw.batch1_p50_ms:.3f} ms")
    print(f"largest difference between hanmo's and a peer's samples: {worst:g}")
    print(f"figures: {OUT_JSON.relative_to(ROOT)}, chart: {CHART.relative_to(ROOT)}")


SYSTEMS = {"hanmo": "hanmo", **{system.key: system.label for system in PEERS}}


def report(
    name: str,
    runs: dict[str, list[dict[str, Any]]],
    body: str = BODY,
    peers: tuple[PeerSystem, ...] = PEERS,
) -> None:
    """One configuration's table: req/s, p50, p99 and failures of hanmo and each peer."""
    keys = ["hanmo", *(system.key for system in peers)]
    print(f"\n{name} (hey {SECONDS:g} s per level, POST {body[:80]})")
    print("  c    " + " | ".join(_header(SYSTEMS[key]) for key in keys))
    for i, level in enumerate(r["concurrency"] for r in runs["hanmo"]):
        print(f"  {level:<5}" + " | ".join(_cell(LoadResult(**runs[key][i])) for key in keys))


def _header(label: str) -> str:
    return f"{label:>16} req/s  p50 ms  p99 ms  errors  "


def _cell(r: LoadResult) -> str:
    return f"{r.ok_per_s:>22.0f} {_ms(r.p50_ms):>7} {_ms(r.p99_ms):>7}  {r.describe_failures():<8}"


def report_ceiling(
    bare: list[LoadResult], results: dict[str, dict[str, list[dict[str, Any]]]]
) -> None:
    """The bare endpoint's table with hanmo as a fraction of it at each level (one column per
    configuration), then, at TARGET_LEVEL, hanmo against the bare endpoint and each peer, with
    the issue's targets (>= 40% of the bare endpoint, >= 4x each peer)."""
    print(
        f"\nthe bare endpoint (bench/bare_app.py: one uvicorn process; hey {SECONDS:g} s per level)"
    )
    print(f"  c    {_header('bare endpoint')}| hanmo as a share of it: " + ", ".join(results))
    for i, r in enumerate(bare):
        shares = [
            _share(systems["hanmo"][i]["ok_per_s"], r.ok_per_s) for systems in results.values()
        ]
        print(f"  {r.concurrency:<5}{_cell(r)}| " + ", ".join(shares))
    levels = [r.concurrency for r in bare]
    if TARGET_LEVEL not in levels:
        return
    i = levels.index(TARGET_LEVEL)
    print(f"\nat c={TARGET_LEVEL} (targets: hanmo >= 40% of the bare endpoint, >= 4x each peer):")
    for name, systems in results.items():
        ours = systems["hanmo"][i]["ok_per_s"]
        parts = [f"hanmo = {_share(ours, bare[i].ok_per_s)} of the bare endpoint"]
        for system in PEERS:
            if system.key in systems:
                theirs = systems[system.key][i]["ok_per_s"]
                ratio = f"{ours / theirs:.2f}x" if theirs else "-"
                parts.append(f"hanmo / {system.short} = {ratio}")
        print(f"  {name}: " + "; ".join(parts))


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def chart(
    results: dict[str, dict[str, list[dict[str, Any]]]], bare: list[dict[str, Any]] | None = None
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), sharey=True)
    for ax, (name, systems) in zip(axes, results.items(), strict=True):
        panel(ax, name, {**systems, "bare": bare} if bare else systems)
    axes[0].set_ylabel("p99 latency, ms (log)")
    axes[0].legend(fontsize=7)
    fig.suptitle("tiny MLP sampler, 1 ORT thread, hey: throughput against p99 (2 cores)")
    fig.tight_layout()
    CHART.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(CHART, dpi=110)


STYLES = {"hanmo": "o-", "litserve": "s--", "ray": "^-.", "bare": "x:"}


def panel(ax: Any, title: str, systems: dict[str, list[dict[str, Any]]]) -> None:
    """One chart panel: throughput against p99 for each system, levels annotated."""
    for system, runs in systems.items():
        xs = [r["ok_per_s"] for r in runs]
        ys = [r["p99_ms"] or float("nan") for r in runs]
        label = SYSTEMS.get(system, "bare endpoint (ceiling)")
        ax.plot(xs, ys, STYLES.get(system, "."), label=label)
        for r, x, y in zip(runs, xs, ys, strict=True):
            ax.annotate(f"c={r['concurrency']}", (x, y), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("requests/s (2xx)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)


if __name__ == "__main__":
    main()
