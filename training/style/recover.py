"""A shipped glyph-style version's weights as a PyTorch checkpoint, read back from its ONNX graphs.

The job keeps its trained weights in .cache/style/<key>.pt, which a fresh checkout lacks; the
exported graphs hold the same float32 tensors. Most keep their parameter's name; the exporter
renames the ones it reshapes (GroupNorm's scale and shift become ``val_N`` [C, 1, 1]
constants). Those are found by exporting the same architecture once more with every
parameter marked (parameter i's first element set to MARK + i, the rest 0): the same code and
exporter give the same names, so each ``val_N`` names its parameter. The recovered model is
then checked against the shipped graphs with ``export.parity`` (max abs difference on random
inputs) before anything is written.

    .venv/bin/python -m training.style.recover models/glyph-style/1

writes .cache/style/<the card's metrics.training.checkpoint>.pt, the file `make train-style`
would have left, so a further cycle (the job's ``--then``) can start from the shipped weights.

On 2026-12-02, for models/glyph-style/1 (checkpoint d237b11c4bafcc75, ~20 s): parity 3.5e-6,
and the recovered model exported again gives both graphs byte for byte (same sha256)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from training.style.__main__ import CACHE
from training.style.export import GRAPHS, export_graphs, parity
from training.style.model import StyleTransfer

# parity of the recovered model with the shipped graphs: ONNX Runtime's kernels against
# PyTorch's, on the same weights (the job's own export check allows 1e-4)
TOLERANCE = 1e-4
# far from any constant the exporter writes (shape vectors, GroupNorm's unit scale, eps)
MARK = 100_000


def initializers(directory: Path) -> dict[str, np.ndarray]:
    """Every initialiser of both graphs, keyed ``role/name`` (the two graphs name theirs apart)."""
    found: dict[str, np.ndarray] = {}
    for role, (file, _, _) in GRAPHS.items():
        for t in onnx.load(str(directory / file)).graph.initializer:
            found[f"{role}/{t.name}"] = numpy_helper.to_array(t)
    return found


def recover(directory: Path) -> StyleTransfer:
    """The version's networks with its graphs' weights, in eval mode; shapes from its card."""
    signature = json.loads((directory / "card.json").read_text())["signature"]
    size, struct_dim = int(signature["size"]), int(signature["struct_dim"])
    shipped = initializers(directory)
    queries = shipped.get("encoder/encoder.queries")
    model = StyleTransfer(
        # the head writes the global code's mean and log-variance
        style_dim=int(shipped["encoder/encoder.head.weight"].shape[0]) // 2,
        struct_dim=struct_dim,
        # the stem writes width / 2 channels (as train.load_checkpoint reads it)
        width=2 * int(shipped["generator/stem.0.weight"].shape[0]),
        n_content=len(signature["content_fonts"]),
        tokens=0 if queries is None else int(queries.shape[0]),
        warp="generator/affine.weight" in shipped,
    )
    state = model.state_dict()
    names = list(state)
    with torch.no_grad():
        for i, name in enumerate(names):
            marked = torch.zeros_like(state[name]).reshape(-1)
            marked[0] = MARK + i
            state[name].copy_(marked.reshape(state[name].shape))
    with tempfile.TemporaryDirectory() as tmp:
        export_graphs(model, Path(tmp), size, struct_dim)
        marks = initializers(Path(tmp))
    recovered: dict[str, torch.Tensor] = {}
    for where, mark in marks.items():
        flat = mark.reshape(-1)
        marked = mark.dtype == np.float32 and flat.size and np.isfinite(flat[0])
        i = int(flat[0]) - MARK if marked else -1
        if not 0 <= i < len(names) or flat[0] != MARK + i or np.any(flat[1:]):
            continue  # shape constants and the exporter's own tensors
        name = names[i]
        if state[name].numel() != flat.size:
            raise ValueError(f"{where}: does not match the parameter {name}")
        recovered[name] = torch.from_numpy(shipped[where].copy()).reshape(state[name].shape)
    missing = [n for n in names if n not in recovered]
    if missing:
        raise ValueError(f"not in the shipped graphs: {missing}")
    model.load_state_dict(recovered)
    model.eval()
    diff = parity(model, directory, size, struct_dim)
    if diff > TOLERANCE:
        raise ValueError(f"recovered weights differ from the graphs: max abs diff {diff:.2e}")
    return model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.style.recover")
    p.add_argument("version", type=Path, help="a version directory, e.g. models/glyph-style/1")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    card = json.loads((args.version / "card.json").read_text())
    key = card["metrics"]["training"]["checkpoint"]
    model = recover(args.version)
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"{key}.pt"
    history = [card["metrics"]["training"]["final"]]
    torch.save({"model": model.state_dict(), "history": history, "recovered": True}, out)
    print(f"{out}: {len(model.state_dict())} tensors, parity with the graphs checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
