"""hanmo side by side with LitServe on the tiny MLP sampler (16 -> 256 -> 784), loaded by `hey`.

Both serve the same ONNX file with one ONNX Runtime intra-op thread, one HTTP server process and
one inference process, no CPU pinning, and answer the same request with the same JSON floats
(hanmo's `format: array`; the peer draws the noise with hanmo's generator, and its answers are
checked equal to hanmo's before any timing). Three configurations:

* no batching: hanmo `max_batch_rows=1`; LitServe `max_batch_size=1`;
* batch 16 / 5 ms: hanmo `max_batch_rows=16, max_wait_ms=5`; LitServe `max_batch_size=16,
  batch_timeout=0.005`;
* defaults: each system as it ships (hanmo: 256 rows, no wait; LitServe: no batching).

Concurrency 1, 4, 16, 64, 256, `PEER_SECONDS` (8) s each. Writes bench/out/peer.json and the
chart docs/bench/peer.png (throughput against p99). Needs `hey` and the peer's venv:
`make peer-tools`, then `.venv/bin/python -m bench.peer`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np

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
SECONDS = float(os.environ.get("PEER_SECONDS", "8"))
LEVELS = tuple(int(c) for c in os.environ.get("PEER_LEVELS", "1,4,16,64,256").split(","))
BODY = '{"n": 1, "seed": 7, "format": "array"}'
CONFIGS: list[tuple[str, dict[str, Any], tuple[int, float]]] = [
    ("no batching", {"max_batch_rows": 1, "max_wait_ms": 0.0}, (1, 0.0)),
    ("batch 16 / 5 ms", {"max_batch_rows": 16, "max_wait_ms": 5.0}, (16, 0.005)),
    ("defaults", {}, (1, 0.0)),
]
OUT_JSON = ROOT / "bench" / "out" / "peer.json"
CHART = ROOT / "docs" / "bench" / "peer.png"


def start_peer(
    model_dir: Path, port: int, batch: int, timeout: float, body: str = BODY
) -> subprocess.Popen[bytes]:
    """LitServe on `model_dir` (its card's kind picks the API), once it answers `body`."""
    # the repository, and the client's folder: the api modules it borrows import the wire
    # schemas from hanmo_client (pydantic only, which LitServe's FastAPI brings)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "clients" / "python")]),
    }
    args = [str(model_dir), str(port), str(batch), str(timeout), "1"]
    child = subprocess.Popen(
        [str(PEER_PYTHON), str(ROOT / "bench" / "litserve_app.py"), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: `stop` ends LitServe's workers too
    )
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=5) as http:
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise RuntimeError("LitServe exited during start-up")
            try:
                answer = http.post(
                    f"http://127.0.0.1:{port}/predict",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                if answer.status_code == 200:
                    return child
            except httpx.TransportError:
                pass
            time.sleep(0.3)
    stop(child)
    raise RuntimeError("LitServe did not come up in 60 s")


def stop(child: subprocess.Popen[bytes]) -> None:
    """End LitServe and every process it spawned. Terminating the server alone left its
    inference workers running (found at 7-47% CPU each, minutes later, skewing the runs)."""
    try:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)  # workers that outlived the server
    child.wait()


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
) -> tuple[dict[str, dict[str, list[dict[str, Any]]]], dict[str, float]]:
    """hanmo and LitServe on `model_dir` under each of CONFIGS: first `check(hanmo's URL, the
    peer's URL)` (the largest difference between their answers), then each system swept
    alone. Returns the runs and the differences, by configuration."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    differences: dict[str, float] = {}
    for name, knobs, (batch, timeout) in CONFIGS:
        slug = f"{label}-{name.replace(' ', '-').replace('/', '')}"
        with private_hanmo(tmp / slug, model_dir) as bench:
            settings = bench.settings.model_copy(
                update={**knobs, "intra_op_threads": 1, "port": free_port()}
            )
            peer_port = free_port()
            peer_url = f"http://127.0.0.1:{peer_port}/predict"
            peer = start_peer(model_dir, peer_port, batch, timeout, body)
            try:
                with serving(settings, tmp / "logs" / slug) as base:
                    url = f"{base}{url_path}"
                    differences[name] = check(url, peer_url)
                    stop(peer)  # one system at a time under load
                    hanmo_runs = sweep(hey, url, body, levels)
                peer = start_peer(model_dir, peer_port, batch, timeout, body)
                peer_runs = sweep(hey, peer_url, body, levels)
            finally:
                stop(peer)
        runs[name] = {
            "hanmo": [asdict(r) for r in hanmo_runs],
            "litserve": [asdict(r) for r in peer_runs],
        }
        report(f"{label}: {name}", hanmo_runs, peer_runs, body)
        print(f"  largest difference between the answers: {differences[name]:g}")
    return runs, differences


def main() -> None:
    hey = find_hey()
    if hey is None:
        sys.exit(INSTALL_HINT)
    if not PEER_PYTHON.exists():
        sys.exit(f"{PEER_PYTHON} missing: run `make peer-tools`")
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
            same_answers,
            tmp,
            "tiny-sampler",
        )
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(
        json.dumps(
            {"raw_batch1_p50_ms": raw.batch1_p50_ms, "max_abs_diff": checks, "runs": results},
            indent=2,
        )
    )
    chart(results)
    print(f"\nraw in-process batch-1 p50: {raw.batch1_p50_ms:.3f} ms")
    print(f"largest difference between the two systems' samples: {max(checks.values()):g}")
    print(f"figures: {OUT_JSON.relative_to(ROOT)}, chart: {CHART.relative_to(ROOT)}")


def report(name: str, ours: list[LoadResult], theirs: list[LoadResult], body: str = BODY) -> None:
    print(f"\n{name} (hey {SECONDS:g} s per level, POST {body[:80]})")
    print("  c     hanmo req/s  p50 ms  p99 ms  errors   |  LitServe req/s  p50 ms  p99 ms  errors")
    for a, b in zip(ours, theirs, strict=True):
        print(
            f"  {a.concurrency:<5} {a.ok_per_s:>11.0f} {_ms(a.p50_ms):>7} {_ms(a.p99_ms):>7}"
            f"  {a.describe_failures():<8} |  {b.ok_per_s:>14.0f} {_ms(b.p50_ms):>7}"
            f" {_ms(b.p99_ms):>7}  {b.describe_failures()}"
        )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def chart(results: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), sharey=True)
    for ax, (name, systems) in zip(axes, results.items(), strict=True):
        panel(ax, name, systems)
    axes[0].set_ylabel("p99 latency, ms (log)")
    axes[0].legend()
    fig.suptitle("tiny MLP sampler, 1 ORT thread, hey: throughput against p99 (2 cores)")
    fig.tight_layout()
    CHART.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(CHART, dpi=110)


def panel(ax: Any, title: str, systems: dict[str, list[dict[str, Any]]]) -> None:
    """One chart panel: throughput against p99 for hanmo and the peer, levels annotated."""
    for system, style in (("hanmo", "o-"), ("litserve", "s--")):
        runs = systems[system]
        xs = [r["ok_per_s"] for r in runs]
        ys = [r["p99_ms"] or float("nan") for r in runs]
        ax.plot(xs, ys, style, label="hanmo" if system == "hanmo" else "LitServe 0.2.19")
        for r, x, y in zip(runs, xs, ys, strict=True):
            ax.annotate(f"c={r['concurrency']}", (x, y), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("requests/s (2xx)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)


if __name__ == "__main__":
    main()
