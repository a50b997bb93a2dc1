"""Tiny autoregressive models for tests (issue 50, item 4): a masked linear step graph built
with onnx.helper (no torch): levels -> one-hot -> a linear map whose weight from input
position q to output position p is zero unless q < p (a NADE-like causal model), -> logits
[N, P, V]. `leak` keeps the diagonal (position p sees x[p]): a graph the causality check
must refuse. `classes` adds a label embedding (a conditional model). Random weights, so
samples are noise, but every draw depends on the positions before it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from training.export import write_card


def step_graph(
    shape: tuple[int, ...] = (8, 8),
    vocabulary: int = 17,
    classes: int | None = None,
    *,
    leak: bool = False,
    seed: int = 0,
    hidden: int = 0,
) -> onnx.ModelProto:
    """The step graph; `hidden` > 0 repeats a masked hidden layer (a heavier graph)."""
    rng = np.random.default_rng(seed)
    total, v = math.prod(shape), vocabulary
    q = np.repeat(np.arange(total), v)  # input position of each one-hot column
    mask = (q[:, None] <= q[None, :]) if leak else (q[:, None] < q[None, :])
    w = (rng.standard_normal((total * v, total * v)) * 0.6).astype(np.float32) * mask
    b = (rng.standard_normal(total * v) * 0.5).astype(np.float32)
    init = [
        numpy_helper.from_array(np.eye(v, dtype=np.float32), "eye"),
        numpy_helper.from_array(np.array([0, total * v], np.int64), "flat"),
        numpy_helper.from_array(np.array([0, total, v], np.int64), "cube"),
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(b, "b"),
    ]
    nodes = [
        helper.make_node("Gather", ["eye", "x"], ["onehot"]),
        helper.make_node("Reshape", ["onehot", "flat"], ["h"]),
        helper.make_node("MatMul", ["h", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a0"]),
    ]
    last = "a0"
    if hidden:  # masked square layers over the same columns (position p sees q <= p of a0)
        square = (q[:, None] <= q[None, :]).astype(np.float32)
        wh = (rng.standard_normal((total * v, total * v)) * 0.05).astype(np.float32) * square
        init.append(numpy_helper.from_array(wh, "wh"))
        for i in range(hidden):
            nodes.append(helper.make_node("MatMul", [last, "wh"], [f"hm{i}"]))
            nodes.append(helper.make_node("Tanh", [f"hm{i}"], [f"ht{i}"]))
            nodes.append(helper.make_node("Add", [f"ht{i}", "a0"], [f"a{i + 1}"]))
            last = f"a{i + 1}"
    inputs = [helper.make_tensor_value_info("x", TensorProto.INT64, ["n", total])]
    if classes:
        emb = (rng.standard_normal((classes, total * v)) * 2.0).astype(np.float32)
        init.append(numpy_helper.from_array(emb, "emb"))
        nodes.append(helper.make_node("Gather", ["emb", "label"], ["e"]))
        nodes.append(helper.make_node("Add", [last, "e"], ["withlabel"]))
        last = "withlabel"
        inputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["n"]))
    nodes.append(helper.make_node("Reshape", [last, "cube"], ["logits"]))
    graph = helper.make_graph(
        nodes,
        "ar-step",
        inputs,
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", total, v])],
        init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def save_ar(
    directory: Path,
    name: str = "tiny-ar",
    shape: tuple[int, ...] = (8, 8),
    vocabulary: int = 17,
    classes: int | None = None,
    **options: object,
) -> Path:
    """A tiny autoregressive model with its card in `directory` (options: leak, seed,
    hidden, and card signature extras such as max_batch_rows)."""
    graph_options = {k: options.pop(k) for k in ("leak", "seed", "hidden") if k in options}
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(step_graph(shape, vocabulary, classes, **graph_options), directory / "step.onnx")  # type: ignore[arg-type]
    inputs = ["x", "label"] if classes else ["x"]
    write_card(
        directory,
        name=name,
        kind="autoregressive",
        fmt="onnx",
        graphs={"step": ("step.onnx", inputs, ["logits"])},
        signature={
            "shape": list(shape),
            "vocabulary": vocabulary,
            "order": "raster",
            "classes": classes,
            "image": True,
            **options,
        },
        code_revision="test",
    )
    return directory
