"""Export helpers shared by every training job: ONNX graphs with a dynamic batch axis and
explicit I/O names, TorchScript as the alternative format, and the card beside them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import onnx
import torch
from hanmo_client._export_graphs import strip_metadata

from app.registry.cards import Card, GraphSpec, parse_card, sha256_file


def export_onnx(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_shapes: tuple[dict[int, Any], ...] | None = None,
) -> None:
    """Dynamo export, one file (no external data), every input's axis 0 dynamic (or the
    given ``dynamic_shapes``), and no exporter metadata, so the bytes depend on the weights
    and the graph alone."""
    batch = torch.export.Dim.AUTO
    dynamic = dynamic_shapes or tuple({0: batch} for _ in args)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        module.eval(),
        args,
        str(path),
        input_names=input_names,
        output_names=output_names,
        dynamic_shapes=dynamic,
        external_data=False,
        dynamo=True,
        verbose=False,
    )
    model = onnx.load(str(path))
    strip_metadata(model)
    onnx.save(model, str(path))


def export_checked(
    module: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
    input_name: str,
    output_names: list[str],
    tolerance: float,
) -> list[str]:
    """export_onnx of a one-input graph, then ONNX Runtime against PyTorch at the example rows
    and at N = 1 (every output within `tolerance`, relative and absolute). Returns the output
    names."""
    import numpy as np
    import onnxruntime as ort

    export_onnx(module.eval(), (example,), path, [input_name], output_names)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for rows in (example, example[:1]):
        got = session.run(output_names, {input_name: rows.numpy()})
        with torch.no_grad():
            want = module(rows)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w.numpy(), rtol=tolerance, atol=tolerance)
    return output_names


def export_torchscript(module: torch.nn.Module, args: tuple[torch.Tensor, ...], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        traced = torch.jit.trace(module.eval(), args)
    traced.save(str(path))


def code_revision() -> str:
    """HEAD's commit, with "-dirty" when the tracked code differs from it (models/ and docs/,
    which a training job rewrites, aside): a card must not name a commit that did not make it."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=root
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", ".", ":(exclude)models", ":(exclude)docs"],
            capture_output=True,
            cwd=root,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if changed.returncode else "")


def write_card(
    directory: Path,
    *,
    name: str,
    kind: str,
    fmt: str,
    graphs: dict[str, tuple[str, list[str], list[str]]],
    signature: dict[str, Any],
    **extra: Any,
) -> Card:
    """card.json for the files in `directory`; graphs: role -> (file, inputs, outputs)."""
    card = parse_card(
        {
            "name": name,
            "kind": kind,
            "format": fmt,
            "graphs": {
                role: GraphSpec(file=f, sha256=sha256_file(directory / f), inputs=i, outputs=o)
                for role, (f, i, o) in graphs.items()
            },
            "signature": signature,
            "code_revision": extra.pop("code_revision", code_revision()),
            **extra,
        }
    )
    (directory / "card.json").write_text(json.dumps(card.model_dump(mode="json"), indent=2) + "\n")
    return card
