"""Predictive benchmark: S posterior draws as ONE stacked graph against S separate ONNX Runtime
sessions (S = 64, batch 1 and 256), and served /predict latency for one row over HTTP.

The two graph layouts compute the same MLP draws (8 -> 50 -> mean, var, as for Concrete) with
the same weights; the stacked one broadcasts x [1, N, D] against weights [S, D, H]. Both are
built with onnx.helper (no torch), checked equal, then timed by median call time. The HTTP
figure serves a shipped predictive model when models/concrete-sghmc exists, else the stacked
graph above, through `hanmo api` + `hanmo worker` with default settings, loaded by hey at
concurrency 1. Run: `.venv/bin/python -m bench.predictive` (part of `make bench`)."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from app.worker.pool import plan_slots
from bench.hey import INSTALL_HINT, find_hey, run_hey
from bench.serving import ROOT, flush, free_port, private_hanmo, serving
from training.export import write_card

DRAWS, FEATURES, HIDDEN = 64, 8, 50
BATCHES = (1, 256)
SECONDS_PER_CASE = 1.0
TARGET_SPEEDUP_256 = 5.0


def weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w1": (rng.standard_normal((DRAWS, FEATURES, HIDDEN)) / FEATURES**0.5).astype(np.float32),
        "b1": (0.1 * rng.standard_normal((DRAWS, 1, HIDDEN))).astype(np.float32),
        "w2": (rng.standard_normal((DRAWS, HIDDEN, 2)) / HIDDEN**0.5).astype(np.float32),
        "b2": (0.1 * rng.standard_normal((DRAWS, 1, 2))).astype(np.float32),
    }


def mlp_graph(params: dict[str, np.ndarray], stacked: bool) -> onnx.ModelProto:
    """x [N, D] -> mean, var: [S, N, 1] when stacked, else [N, 1] for one draw."""
    first = "x3" if stacked else "x"
    nodes = [helper.make_node("Unsqueeze", ["x", "axis0"], ["x3"])] if stacked else []
    nodes += [
        helper.make_node("MatMul", [first, "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["o0"]),
        helper.make_node("Add", ["o0", "b2"], ["o"]),
        helper.make_node("Split", ["o", "split"], ["mean", "raw"], axis=-1),
        helper.make_node("Softplus", ["raw"], ["var"]),
    ]
    shape = ["s", "n", 1] if stacked else ["n", 1]
    initializers = [numpy_helper.from_array(v, k) for k, v in params.items()]
    initializers.append(numpy_helper.from_array(np.array([1, 1], dtype=np.int64), "split"))
    if stacked:
        initializers.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", FEATURES])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name in ("mean", "var")],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def session(model: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    """The worker's session options (app.runtime.sessions.OnnxGraph) with `threads`."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def median_ms(call: object, seconds: float = SECONDS_PER_CASE) -> float:
    assert callable(call)
    for _ in range(5):
        call()
    times, deadline = [], time.perf_counter() + seconds
    while (start := time.perf_counter()) < deadline or len(times) < 20:
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def stacked_vs_separate(threads: int) -> list[tuple[int, float, float]]:
    """(batch, stacked ms, separate ms) per batch size, after checking both agree."""
    params = weights()
    stacked = session(mlp_graph(params, stacked=True), threads)
    separate = [
        session(mlp_graph({k: v[s] for k, v in params.items()}, stacked=False), threads)
        for s in range(DRAWS)
    ]
    rows = []
    for batch in BATCHES:
        feeds = {
            "x": np.random.default_rng(batch).standard_normal((batch, FEATURES), dtype=np.float32)
        }
        one = stacked.run(["mean"], feeds)[0]
        many = np.stack([s.run(["mean"], feeds)[0] for s in separate])
        np.testing.assert_allclose(one, many, rtol=1e-5, atol=1e-6)
        rows.append(
            (
                batch,
                median_ms(lambda f=feeds: stacked.run(None, f)),
                median_ms(lambda f=feeds: [s.run(None, f) for s in separate]),
            )
        )
    return rows


def served_model_dir(tmp: Path) -> Path:
    shipped = sorted((ROOT / "models" / "concrete-sghmc").glob("*/card.json"))
    if shipped:
        return shipped[-1].parent
    directory = tmp / "stacked-mlp"
    directory.mkdir()
    onnx.save(mlp_graph(weights(), stacked=True), directory / "model.onnx")
    write_card(
        directory,
        name="stacked-mlp",
        kind="predictive",
        fmt="onnx",
        graphs={"predict": ("model.onnx", ["x"], ["mean", "var"])},
        signature={"task": "regression", "input_dim": FEATURES, "draws": DRAWS, "method": "seeded"},
        code_revision="bench",
    )
    return directory


def served_predict(tmp: Path, hey: str) -> tuple[str, float | None, float]:
    """(model, p50 ms, 2xx req/s) of /predict with one row at concurrency 1."""
    model_dir = served_model_dir(tmp)
    card = json.loads((model_dir / "card.json").read_text())
    body = json.dumps({"inputs": [[1.0] * int(card["signature"]["input_dim"])]})
    with private_hanmo(tmp, model_dir) as bench:
        settings = bench.settings.model_copy(update={"port": free_port()})
        flush(settings)
        with serving(settings, tmp / "logs") as base_url:
            url = f"{base_url}/v1/models/{card['name']}/predict"
            run_hey(hey, url, body, 1, 1.0)  # warm-up
            result = run_hey(hey, url, body, 1, 5.0)
    return card["name"], result.p50_ms, result.ok_per_s


def main() -> int:
    worker = plan_slots(["cpu"], 1)[0].threads
    print(
        f"1. S = {DRAWS} draws of an {FEATURES}-{HIDDEN}-2 MLP, median call; sessions with "
        f"the worker's intra-op threads ({worker}, the default here) and with 1"
    )
    print("   threads  batch   one stacked graph   64 sessions   speed-up")
    speedup = 0.0
    for threads in dict.fromkeys((worker, 1)):
        for batch, one, many in stacked_vs_separate(threads):
            print(
                f"   {threads:7d}  {batch:5d}   {one:14.3f} ms   {many:8.3f} ms"
                f"   {many / one:7.1f}x"
            )
            if threads == worker and batch == BATCHES[-1]:
                speedup = many / one
    verdict = "met" if speedup >= TARGET_SPEEDUP_256 else "NOT met"
    print(f"   target at batch 256, worker threads: >= {TARGET_SPEEDUP_256:g}x: {verdict}")
    hey = find_hey()
    if hey is None:
        print(f"2. served /predict: skipped, hey not found. {INSTALL_HINT}")
        return 1
    with tempfile.TemporaryDirectory(prefix="hanmo-bench-") as tmp:
        name, p50, rate = served_predict(Path(tmp), hey)
    p50_text = f"{p50:.1f} ms" if p50 is not None else "n/a"
    print(f"2. served /predict, one row, concurrency 1 ({name}): p50 {p50_text}, {rate:,.0f} req/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
