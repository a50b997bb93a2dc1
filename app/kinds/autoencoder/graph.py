"""The `autoencoder` kind: `x` [N, D] float32 (pixel levels) in; for all S posterior draws of the
decoder from one graph, the decoded `mean` and `var` [S, N, D] and `log_lik` [S, N] (log p(x | code,
θ_s) of the input). A job's outputs are returned with rows first ([N, S, ...]) so batches split
like every other kind's.

The optional role `decode` (POST /sample) takes `z` [N, latent_dim] float32, noise the api makes,
and gives the same draws' `mean` and `var` [S, N, D]. A job runs it when its inputs hold `z`."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.kinds import base
from app.kinds.base import CheckedKind, Data, Graph, Tensors
from app.noise import standard_normal_rows

OUTPUTS = ("mean", "var", "log_lik")
DECODED = ("mean", "var")  # the decode graph's outputs


class AutoencoderKind(CheckedKind):
    roles: tuple[str, ...] = ("reconstruct",)

    def problems(
        self, signature: dict[str, Any], graphs: dict[str, Graph], data: Data = None
    ) -> list[str]:
        problems = [
            f"an autoencoder card must give signature.{field} >= 1"
            for field in ("input_dim", "draws")
            if base.positive(signature.get(field)) is None
        ]
        levels = base.positive(signature.get("levels"))
        if levels is None or levels < 2:
            problems.append("an autoencoder card must give signature.levels >= 2")
        shape = signature.get("image_shape")
        if shape is not None and (
            not isinstance(shape, list)
            or len(shape) != 2
            or int(np.prod(shape)) != signature.get("input_dim")
        ):
            problems.append(
                f"signature.image_shape {shape} must be [H, W] with H x W = signature.input_dim"
            )
        if "decode" in graphs and base.positive(signature.get("latent_dim")) is None:
            problems.append(
                "an autoencoder with a decode graph must give signature.latent_dim >= 1"
            )
        graph = graphs.get("reconstruct")
        if graph is None or problems:
            return problems
        problems += _io_problems(
            "graphs.reconstruct", graph, "x", base.positive(signature.get("input_dim")), OUTPUTS
        )
        problems = problems or self._run_problems(signature, graph)
        if "decode" in graphs:
            problems += self._decode_problems(signature, graphs["decode"])
        return problems

    def _decode_problems(self, signature: dict[str, Any], graph: Graph) -> list[str]:
        """`z` [N, latent_dim] float32 in, `mean` and `var` [S, N, D] out; run on noise as the
        api makes it at each batch size, like the reconstruct graph."""
        where = "graphs.decode"
        dim = int(signature["latent_dim"])
        problems = _io_problems(where, graph, "z", dim, DECODED)
        if problems:
            return problems
        inputs = {
            rows: {"z": standard_normal_rows(base.CHECK_SEED, rows, dim)}
            for rows in base.CHECK_ROWS
        }
        outputs, problems = base.run_each(where, graph.run, inputs)
        return problems or _output_problems(where, signature, outputs, DECODED)

    def _run_problems(self, signature: dict[str, Any], graph: Graph) -> list[str]:
        """Run on random levels at each batch size: every output finite; mean and var
        [S, N, D] with S the card's draws and D its input_dim, log_lik [S, N]; var positive."""
        outputs, problems = base.run_each(
            "graphs.reconstruct", graph.run, self.random_inputs(signature)
        )
        return problems or _output_problems("graphs.reconstruct", signature, outputs, OUTPUTS)

    def random_inputs(self, signature: dict[str, Any]) -> dict[int, Tensors]:
        """Seeded rows of uniform integer levels."""
        rng = np.random.default_rng(base.CHECK_SEED)
        dim, levels = int(signature["input_dim"]), int(signature["levels"])
        return {
            rows: {"x": rng.integers(0, levels, (rows, dim)).astype(np.float32)}
            for rows in base.CHECK_ROWS
        }

    def example(self, signature: dict[str, Any], rows: int) -> Tensors:
        return {"x": np.zeros((rows, int(signature["input_dim"])), np.float32)}

    def run(self, signature: dict[str, Any], graphs: dict[str, Graph], inputs: Tensors) -> Tensors:
        role, names = ("decode", DECODED) if "z" in inputs else ("reconstruct", OUTPUTS)
        rows = len(next(iter(inputs.values())))
        if rows == 1:  # ONNX Runtime's MatMul takes another path at one row (last bits differ):
            inputs = {k: np.concatenate([v, v]) for k, v in inputs.items()}  # a row alone = batched
        outputs = graphs[role].run(inputs)
        return {
            name: np.ascontiguousarray(np.moveaxis(outputs[name], 0, 1)[:rows], dtype=np.float32)
            for name in names
        }


def _output_problems(
    graph: str, signature: dict[str, Any], outputs: dict[int, Tensors], names: tuple[str, ...]
) -> list[str]:
    """Every output finite; mean and var [S, N, D] with S the card's draws and D its
    input_dim, log_lik [S, N]; var positive."""
    problems: list[str] = []
    draws, dim = int(signature["draws"]), int(signature["input_dim"])
    for name in names:
        where = f"{graph} output `{name}`"
        runs = {rows: out[name] for rows, out in outputs.items()}
        problems += base.output_problems(where, runs, axis=1)
        want = (draws, dim) if name != "log_lik" else (draws,)
        problems += [
            f"{where}: shape {value.shape} on N={rows}, expected "
            f"{[want[0], rows, *want[1:]]} (S = signature.draws, D = signature.input_dim)"
            for rows, value in runs.items()
            if value.shape != (want[0], rows, *want[1:])
        ][:1]
    if not problems and not all((out["var"] > 0).all() for out in outputs.values()):
        problems.append(f"{graph} output `var`: must be positive on random inputs")
    return problems


def _io_problems(
    where: str, graph: Graph, name: str, dim: int | None, outputs: tuple[str, ...]
) -> list[str]:
    """One float32 input `name` [N, dim] and the named outputs."""
    problems = []
    if [i.name for i in graph.inputs] != [name]:
        problems.append(
            f"{where} takes exactly one input, `{name}`; has {[i.name for i in graph.inputs]}"
        )
    problems += base.input_problems(where, graph, name, "float32", (None, dim))
    missing = set(outputs) - {o.name for o in graph.outputs}
    if missing:
        problems.append(f"{where} needs outputs {sorted(missing)}")
    return problems
