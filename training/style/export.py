"""Export: the style encoder and the generator as two ONNX graphs, and the content atlas
(every supported character's content glyph and structural code) as a compressed side file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from training.data import chars as charsets
from training.data import structure
from training.data.bank import render_content
from training.export import export_onnx
from training.style.model import StyleTransfer


class EncoderGraph(nn.Module):
    """refs [B, K, H, W], ref_content [B, K, N, H, W] → style [B, D]: the latent's mean
    (serving is deterministic)."""

    def __init__(self, model: StyleTransfer) -> None:
        super().__init__()
        self.encoder = model.encoder

    def forward(self, refs: torch.Tensor, ref_content: torch.Tensor) -> torch.Tensor:
        return self.encoder(refs, ref_content)[0]


# role -> (file, inputs, outputs): the two graphs as the card lists them
GRAPHS = {
    "encoder": ("encoder.onnx", ["refs", "ref_content"], ["style"]),
    "generator": ("generator.onnx", ["content", "struct", "style"], ["glyph"]),
}


def export_graph(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    directory: Path,
    role: str,
    dynamic_shapes: tuple[dict[int, Any], ...],
) -> None:
    """One graph of ``GRAPHS`` through the shared ``export_onnx``, with its own dynamic axes."""
    file, inputs, outputs = GRAPHS[role]
    export_onnx(module, example, directory / file, inputs, outputs, dynamic_shapes)


def export_graphs(model: StyleTransfer, directory: Path, size: int, struct_dim: int) -> None:
    if model.encoder.keys is not None and not model.encoder.slots:
        raise ValueError(
            "a content-matched model's style vector grows with k unless pooled (match_slots)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    k = torch.export.Dim("k", min=1, max=64)
    b = torch.export.Dim("b", min=1, max=4096)
    t = torch.export.Dim("t", min=1, max=65536)
    n = model.n_content
    export_graph(
        EncoderGraph(model),
        (torch.rand(2, 3, size, size), torch.rand(2, 3, n, size, size)),
        directory,
        "encoder",
        ({0: b, 1: k}, {0: b, 1: k}),
    )
    example = (
        torch.rand(3, n, size, size),
        torch.rand(3, struct_dim),
        torch.randn(3, model.encoder.dim),
    )
    export_graph(model.generator, example, directory, "generator", ({0: t}, {0: t}, {0: t}))


def parity(
    model: StyleTransfer, directory: Path, size: int, struct_dim: int, seed: int = 0
) -> float:
    """Max abs difference between PyTorch and ONNX Runtime on random inputs (several k and T)."""
    g = torch.Generator().manual_seed(seed)
    enc = ort.InferenceSession(str(directory / "encoder.onnx"), providers=["CPUExecutionProvider"])
    gen = ort.InferenceSession(
        str(directory / "generator.onnx"), providers=["CPUExecutionProvider"]
    )
    worst = 0.0
    n = model.n_content
    with torch.no_grad():
        for kk, tt in ((1, 1), (4, 7), (16, 33)):
            refs = torch.rand(1, kk, size, size, generator=g)
            rc = torch.rand(1, kk, n, size, size, generator=g)
            want = model.encoder(refs, rc)[0].numpy()
            got = enc.run(None, {"refs": refs.numpy(), "ref_content": rc.numpy()})[0]
            worst = max(worst, float(np.abs(want - got).max()))
            content = torch.rand(tt, n, size, size, generator=g)
            struct = (torch.rand(tt, struct_dim, generator=g) > 0.9).float()
            style = torch.randn(tt, model.encoder.dim, generator=g)
            want = model.generator(content, struct, style).numpy()
            got = gen.run(
                None, {"content": content.numpy(), "struct": struct.numpy(), "style": style.numpy()}
            )[0]
            worst = max(worst, float(np.abs(want - got).max()))
    return worst


def write_atlas(
    path: Path, size: int, vocab: list[str], workers: int = 2, chars: list[str] | None = None
) -> str:
    """Content glyphs ([C, N, H, W], the N fonts of ``fontlib.CONTENTS``) and structural codes
    for GB2312 (levels 1 and 2). Returns the characters the atlas holds (those the primary
    content font draws)."""
    chars = chars if chars is not None else charsets.gb2312((1, 2))
    glyphs, have = render_content(chars, size, workers)
    keep = np.flatnonzero(have)
    kept = [chars[i] for i in keep]
    struct = structure.codes(kept, vocab) > 0.5
    np.savez_compressed(
        path,
        codepoints=np.array([ord(c) for c in kept], np.int32),
        content=glyphs[keep],
        struct=np.packbits(struct, axis=1),
        struct_dim=np.array(struct.shape[1], np.int32),
    )
    return "".join(kept)
