"""The torch side of `hanmo_client.export`: adapters that give a user's modules hanmo's graph
contract, the dynamo ONNX export, and the checks run on the result. Imported only when an
export function is called, so `import hanmo_client` never loads torch or onnx."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import Tensor, nn

BATCH = "N"  # the symbolic name of the rows axis in the exported graph
# ONNX ops that draw random numbers: a graph holding one would not give the same sample twice
RANDOM_OPS = frozenset(
    "RandomNormal RandomNormalLike RandomUniform RandomUniformLike Multinomial Bernoulli".split()
)


class SamplerGraph(nn.Module):
    """`decoder(z)` or `decoder(z, label)` as one float32 output `x` [N, ...]."""

    def __init__(self, decoder: nn.Module, conditional: bool) -> None:
        super().__init__()
        self.decoder = decoder
        self.conditional = conditional

    def forward(self, z: Tensor, label: Tensor | None = None) -> Tensor:
        x = self.decoder(z, label) if self.conditional else self.decoder(z)
        return first(x, "the decoder").to(torch.float32)


class StackedMembers(nn.Module):
    """Ensemble members run side by side, outputs stacked on a new draws axis: regression
    `mean`, `var` [S, N, K] (a member returns (mean, var), or mean alone with `noise_var`),
    classification `logits` [S, N, C]. Rows stay on axis 1."""

    def __init__(self, members: Sequence[nn.Module], task: str, noise_var: float | None) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.task = task
        self.noise_var = noise_var

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        outputs = [self.member(member, x) for member in self.members]
        return tuple(torch.stack(parts) for parts in zip(*outputs, strict=True))

    def member(self, member: nn.Module, x: Tensor) -> tuple[Tensor, ...]:
        out = member(x)
        if self.task == "classification":
            return (columns(first(out, "a member")),)
        if isinstance(out, tuple | list) and len(out) == 2:
            return columns(out[0]), columns(out[1])
        if self.noise_var is None:
            raise ValueError(
                "a regression member must return (mean, var); one that returns the mean alone "
                "needs noise_var= (the observation noise variance, in target units squared)"
            )
        mean = columns(first(out, "a member"))
        return mean, torch.full_like(mean, self.noise_var)


class StackedModule(nn.Module):
    """A module that already stacks its draws: outputs cast to float32, kept as they are."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        out = self.module(x)
        parts = tuple(out) if isinstance(out, tuple | list) else (out,)
        return tuple(part.to(torch.float32) for part in parts)


def first(out: Any, what: str) -> Tensor:
    """The tensor a module returned (the first, when it returned several)."""
    if isinstance(out, tuple | list):
        out = out[0]
    if not isinstance(out, Tensor):
        raise TypeError(f"{what} must return a tensor, returned {type(out).__name__}")
    return out


def columns(value: Tensor) -> Tensor:
    """A member's [N] or [N, K] output as float32 [N, K]."""
    value = value.to(torch.float32)
    return value.unsqueeze(-1) if value.dim() == 1 else value


def run(module: nn.Module, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """The module in eval mode on `inputs`, without gradients; outputs as a tuple."""
    module.eval()
    with torch.no_grad():
        out = module(*inputs)
    return tuple(out) if isinstance(out, tuple | list) else (out,)


def export(
    module: nn.Module, inputs: tuple[Tensor, ...], path: Path, names: tuple[list[str], list[str]]
) -> None:
    """Dynamo export to one file with axis 0 of every input dynamic, then: refuse random ops
    (hanmo makes the noise from the request's seed), name the rows axis `N`, drop the
    exporter's metadata (node stack traces hold absolute paths), and compare ONNX Runtime
    with torch where onnxruntime is installed."""
    input_names, output_names = names
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim.AUTO
    torch.onnx.export(
        module.eval(),
        inputs,
        str(path),
        input_names=input_names,
        output_names=output_names,
        dynamic_shapes=tuple({0: batch} for _ in inputs),
        external_data=False,
        dynamo=True,
        verbose=False,
    )
    model = onnx.load(str(path))
    random = sorted({node.op_type for node in model.graph.node} & RANDOM_OPS)
    if random:
        path.unlink()
        raise ValueError(
            f"the graph draws random numbers ({', '.join(random)}): hanmo feeds the noise as "
            "an input made from the request's seed, so export a module without torch.randn, "
            "dropout in train mode or sampling inside"
        )
    name_batch_axis(model)
    strip_metadata(model)
    onnx.save(model, str(path))
    compare_with_runtime(module, inputs, path, names)


def name_batch_axis(model: onnx.ModelProto) -> None:
    """Rename the exporter's symbol for axis 0 of the first input (`s0`, `s31`, ...) to `N`
    everywhere in the graph, so the file reads as the contract does."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    symbol = dims[0].dim_param if dims else ""
    if not symbol:
        return
    values = [*model.graph.input, *model.graph.output, *model.graph.value_info]
    for value in values:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param == symbol:
                dim.dim_param = BATCH


def strip_metadata(model: onnx.ModelProto) -> None:
    """The same weights and graph give the same bytes in every checkout."""
    for node in model.graph.node:
        del node.metadata_props[:]
    for value in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        del value.metadata_props[:]
    for tensor in model.graph.initializer:
        del tensor.metadata_props[:]
    del model.graph.metadata_props[:]


def compare_with_runtime(
    module: nn.Module, inputs: tuple[Tensor, ...], path: Path, names: tuple[list[str], list[str]]
) -> None:
    """ONNX Runtime against torch on `inputs` and on their first row; skipped without
    onnxruntime (the `hanmo models check` run afterwards loads the graph in any case)."""
    try:
        import onnxruntime
    except ImportError:
        return
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for rows in (inputs, tuple(i[:1] for i in inputs)):
        feeds = {name: value.numpy() for name, value in zip(names[0], rows, strict=True)}
        got = session.run(names[1], feeds)
        for name, mine, want in zip(names[1], got, run(module, rows), strict=True):
            if not torch.allclose(torch.from_numpy(mine), want, rtol=1e-3, atol=1e-4):
                raise ValueError(
                    f"output `{name}` of the exported graph differs from torch's on "
                    f"{len(rows[0])} rows: the exporter changed what the module computes"
                )
