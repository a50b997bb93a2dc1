"""PixelCNN sampling: iteration-level batching against batching whole requests (issue 50).

`hanmo api` + `hanmo worker` (one CPU worker, the defaults otherwise; embedded Redis) serve a
PixelCNN: models/pixelcnn-digits when it is shipped, else a gated PixelCNN of the same size
(training/generative/pixelcnn.py's `Settings()`, the shipped architecture: 32 channels, 6
gated layers, 5x5 kernels, a 64-wide head) with random weights (seed 0): what a step costs
does not depend on what the weights learned. The same worker and model run both modes:

- `step` (HANMO_AR_BATCHING=step, the default): a request joins the running batch at the
  next step and leaves when done (app/worker/steps.py);
- `request` (HANMO_AR_BATCHING=request): a batch of whole requests runs until its last one
  is done before the next batch starts (each request is answered when its own rows are).

Closed loop: c clients (c = 1, 16, 64) each send one request after another for WINDOW_S
seconds, every request one sample (n = 1), streamed (Accept: text/event-stream), with a
prefix of 0, 2, 4 or 6 image rows in turn (64, 48, 32 or 16 steps: requests of different
lengths, as real traffic has). Per cell: samples/s (requests answered in the window after
WARM_S, over that time), p50/p99 time to the first drawn row (the first `row` event past the
prefix) and to the last row (the `done` event).

Both modes' stacks run side by side (each its own embedded Redis and registry; the idle one
costs little) and the cells alternate, ROUNDS rounds, so the load of a shared machine falls
on both; each figure is the median over the rounds.

It first prints what one call of the step graph costs a row at batches 1, 16 and 64 (ONNX
Runtime in process, one thread): `--graph-only` stops there.

Run: `.venv/bin/python -m bench.autoregressive` (about 5 minutes); `--window 10 --rounds 1`
for a shorter run. Figures print as a table and go to bench/out/autoregressive.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime

from bench.serving import ROOT, free_port, private_hanmo, serving

OUT_JSON = ROOT / "bench" / "out" / "autoregressive.json"
SHIPPED = ROOT / "models" / "pixelcnn-digits"
MODES = ("step", "request")
CONCURRENCY = (1, 16, 64)
PREFIX_ROWS = (0, 2, 4, 6)
WIDTH = 8
WINDOW_S = 20.0
ROUNDS = 2
WARM_S = 3.0
RAW_S = 1.5
BUILD = """
import sys
from pathlib import Path
import torch
from training.export import export_onnx, write_card
from training.generative import pixelcnn

torch.manual_seed(0)
directory = Path(sys.argv[1])
graph = pixelcnn.StepGraph(pixelcnn.Settings().build().eval())
example = (torch.zeros(4, 64, dtype=torch.int64),)
export_onnx(graph, example, directory / "step.onnx", ["x"], ["logits"])
write_card(
    directory,
    name="pixelcnn-digits",
    kind="autoregressive",
    fmt="onnx",
    graphs={"step": ("step.onnx", ["x"], ["logits"])},
    signature=dict(pixelcnn.SIGNATURE),
    description="random weights, the default architecture (bench/autoregressive.py)",
)
"""


def model(tmp: Path) -> tuple[Path, str]:
    """The shipped PixelCNN's newest version, else a random-weight one of the same size."""
    versions = sorted(SHIPPED.glob("*/card.json"), key=lambda p: int(p.parent.name))
    if versions:
        return versions[-1].parent, f"models/pixelcnn-digits/{versions[-1].parent.name}"
    directory = tmp / "pixelcnn-random"
    subprocess.run([sys.executable, "-c", BUILD, str(directory)], cwd=ROOT, check=True)
    return directory, "random-weight gated PixelCNN, default size (64 ch, 6 layers, k5)"


async def one(client: httpx.AsyncClient, seed: int, rows: int) -> tuple[float, float, float]:
    """(start, seconds to the first drawn row, seconds to done) of one streamed request."""
    body: dict[str, Any] = {"n": 1, "seed": seed, "format": "array"}
    if rows:
        body["prefix"] = [[(seed + r) % 17] * WIDTH for r in range(rows)]
    start = time.perf_counter()
    first = 0.0
    headers = {"Accept": "text/event-stream"}
    url = "/v1/models/pixelcnn-digits/sample"
    async with client.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "row" and not first:
                if json.loads(line[6:])["row"] >= rows:
                    first = time.perf_counter() - start
            elif line.startswith("data: ") and event in ("done", "failed"):
                assert event == "done", line
                return start, first, time.perf_counter() - start
    raise AssertionError("the stream ended without done")


async def load(url: str, clients: int, window_s: float) -> dict[str, Any]:
    """`clients` closed-loop clients for `window_s`; the cell's figures."""
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    began = time.perf_counter()
    until = began + window_s
    done: list[tuple[float, float, float]] = []

    async def client_loop(index: int, client: httpx.AsyncClient) -> None:
        sent = 0
        while time.perf_counter() < until:
            seed = index * 100_000 + sent
            rows = PREFIX_ROWS[(index + sent) % len(PREFIX_ROWS)]
            done.append(await one(client, seed, rows))
            sent += 1

    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        await asyncio.gather(*(client_loop(i, client) for i in range(clients)))
    ended = time.perf_counter()
    counted = [d for d in done if d[0] >= began + WARM_S and d[0] + d[2] <= until]
    answered = [d for d in done if began + WARM_S <= d[0] + d[2] <= until]
    firsts = [d[1] * 1000 for d in counted]
    lasts = [d[2] * 1000 for d in counted]
    return {
        "clients": clients,
        "requests": len(done),
        "samples_per_s": len(answered) / (window_s - WARM_S),
        "first_row_p50_ms": percentile(firsts, 50),
        "first_row_p99_ms": percentile(firsts, 99),
        "last_row_p50_ms": percentile(lasts, 50),
        "last_row_p99_ms": percentile(lasts, 99),
        "latency_requests": len(counted),
        "drain_s": ended - until,
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def graph_costs(directory: Path, batches: tuple[int, ...] = (1, 16, 64)) -> dict[int, float]:
    """Milliseconds a row of one step-graph call at each batch size: ONNX Runtime in process,
    one intra-op thread, the median over RAW_S of calls (how a step's cost grows with rows)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(directory / "step.onnx"), options, providers=["CPUExecutionProvider"]
    )
    costs = {}
    for rows in batches:
        x = np.random.default_rng(0).integers(0, 17, (rows, 64)).astype(np.int64)
        session.run(None, {"x": x})
        times = []
        until = time.perf_counter() + RAW_S
        while time.perf_counter() < until:
            start = time.perf_counter()
            session.run(None, {"x": x})
            times.append(time.perf_counter() - start)
        costs[rows] = statistics.median(times) * 1000 / rows
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--graph-only", action="store_true", help="print the step graph's cost a row and stop"
    )
    parser.add_argument("--window", type=float, default=WINDOW_S, help="seconds per cell")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="alternated rounds")
    parser.add_argument("--concurrency", type=int, nargs="*", default=list(CONCURRENCY))
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as name, ExitStack() as stack:
        tmp = Path(name)
        directory, which = model(tmp)
        costs = graph_costs(directory)
        print("step graph, ms a row (1 thread):", {k: round(v, 3) for k, v in costs.items()})
        if args.graph_only:
            return
        sha256 = json.loads((directory / "card.json").read_text())["graphs"]["step"]["sha256"]
        urls = {}
        for mode in MODES:  # one private hanmo each (Redis, registry, api, worker), both up
            home = tmp / mode
            home.mkdir()
            bench = stack.enter_context(private_hanmo(home, directory))
            update = {"port": free_port(), "ar_batching": mode}
            settings = bench.settings.model_copy(update=update)
            urls[mode] = stack.enter_context(serving(settings, home / "logs"))
            asyncio.run(load(urls[mode], 2, WARM_S + 2))  # warm-up: sessions, connections
        for round_ in range(args.rounds):  # alternated: the machine's load falls on both
            for clients in args.concurrency:
                for mode in MODES:
                    cell = asyncio.run(load(urls[mode], clients, args.window))
                    runs.append({"round": round_, "mode": mode, **cell})
                    print(json.dumps(runs[-1]), flush=True)
    report = {
        "model": which,
        "step_sha256": sha256,
        "graph_ms_per_row": costs,
        "window_s": args.window,
        "rounds": args.rounds,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "runs": runs,
        "cells": medians(runs),
    }
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)


def medians(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (mode, clients), each figure's median over the rounds."""
    cells: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in runs:
        cells.setdefault((run["mode"], run["clients"]), []).append(run)
    return [
        {
            "mode": mode,
            "clients": clients,
            **{
                key: statistics.median(run[key] for run in group)
                for key in group[0]
                if key not in ("mode", "clients", "round")
            },
        }
        for (mode, clients), group in cells.items()
    ]


def print_table(report: dict[str, Any]) -> None:
    print(
        f"\n{report['model']}; closed loop, n=1, prefixes of 0/2/4/6 rows in turn; "
        f"medians of {report['rounds']} alternated rounds of {report['window_s']:.0f} s"
    )
    print("mode     c   samples/s  first row p50/p99 ms   last row p50/p99 ms")
    by = {(c["mode"], c["clients"]): c for c in report["cells"]}
    for (mode, clients), c in by.items():
        print(
            f"{mode:8s} {clients:2d}  {c['samples_per_s']:9.2f}  "
            f"{c['first_row_p50_ms']:8.0f} / {c['first_row_p99_ms']:6.0f}      "
            f"{c['last_row_p50_ms']:8.0f} / {c['last_row_p99_ms']:6.0f}"
        )
    for clients in sorted({c["clients"] for c in report["cells"]}):
        step, whole = by.get(("step", clients)), by.get(("request", clients))
        if step and whole and whole["samples_per_s"]:
            ratio = step["samples_per_s"] / whole["samples_per_s"]
            print(f"c={clients}: step / request samples/s = {ratio:.2f}x")
    one, many = by.get(("step", 1)), by.get(("step", 64))
    if one and many:
        ratio = many["first_row_p50_ms"] / one["first_row_p50_ms"]
        print(f"step mode: first-row p50 at c=64 / c=1 = {ratio:.1f}x (target <= 2x)")
    print(f"figures in {OUT_JSON}")


if __name__ == "__main__":
    main()
