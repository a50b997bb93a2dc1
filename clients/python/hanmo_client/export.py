"""Export your own PyTorch model as a hanmo model directory: an ONNX graph that keeps its kind's
contract and a `card.json` naming it with its sha256. Then `hanmo models check DIR`, and upload
the directory (`Hanmo.admin.upload_version`, or `POST /admin/models/{name}/versions`).

    from hanmo_client.export import export_predictive, export_sampler

    export_sampler(vae.decoder, 8, "out/my-vae", name="my-vae", sample_shape=[8, 8], image=True)
    export_predictive(members, "out/my-ensemble", name="my-ensemble", task="regression",
                      input_dim=10, features=names, targets=["y"], x_train=x)

The contracts (`GET /v1/kinds` publishes them; docs/bring-your-own-model.md explains them):
- sampler: input `z` [N, z_dim] float32 (and `label` [N] int64 when conditional), output `x`
  [N, ...] with prod(...) = prod(sample_shape). No random ops: the api makes `z` from the
  request's seed, so the same seed gives the same sample.
- predictive: input `x` [N, input_dim] float32 in the features' own units; for each of S
  posterior draws (ensemble members), regression `mean` and `var` [S, N, K] (var > 0) or
  classification `logits` [S, N, C].

Needs the `export` extra (`pip install "hanmo-client[export]"`: torch, onnx, onnxscript);
torch is imported when an export function is called, never by `import hanmo_client`."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack

from hanmo_client.schemas.common import NAME_PATTERN

if TYPE_CHECKING:
    from torch import Tensor, nn

Task = Literal["regression", "classification"]
OUTPUTS: dict[str, list[str]] = {"regression": ["mean", "var"], "classification": ["logits"]}
EXAMPLE_ROWS = 3  # rows of the example inputs the graph is traced and checked with
EXTRA = 'pip install "hanmo-client[export]"'


class CardFields(TypedDict, total=False):
    """What a card says about where the model came from (all optional; the Models tab shows
    them): `description`; `data` (a source string, or a dict whose `feature_summary` the page
    reads); `metrics` (numbers a sampler's card shows; a regression's `this_model` and
    `coverage_curve`, a classifier's `this_model` and `reliability`); `seed`; `command`;
    `code_revision`."""

    description: str
    data: dict[str, Any] | str | None
    metrics: dict[str, Any]
    seed: int | None
    command: str | None
    code_revision: str | None


def export_sampler(
    decoder: nn.Module,
    z_dim: int,
    directory: str | os.PathLike[str],
    *,
    name: str,
    sample_shape: Sequence[int],
    num_labels: int | None = None,
    image: bool = False,
    display_scale: int = 1,
    file: str = "model.onnx",
    **card: Unpack[CardFields],
) -> Path:
    """Export `decoder` (z [N, z_dim] -> x, or (z, label [N] int64) -> x with `num_labels`)
    as a sampler: `file` (graph role `sample`) and card.json in `directory`, which is returned.
    `image`: x holds values in [0, 1] shown as greyscale pictures of its last two axes,
    upscaled `display_scale` times. Raises ValueError when the decoder breaks the contract."""
    torch, graphs = _torch()
    _check_name(name)
    shape = [_count(f"sample_shape[{i}]", d) for i, d in enumerate(sample_shape)]
    z_dim, labels = _count("z_dim", z_dim), _labels(num_labels)
    module = graphs.SamplerGraph(decoder, conditional=labels is not None)
    generator = torch.Generator().manual_seed(0)
    inputs: tuple[Tensor, ...] = (torch.randn(EXAMPLE_ROWS, z_dim, generator=generator),)
    if labels is not None:
        inputs += (torch.arange(EXAMPLE_ROWS, dtype=torch.int64) % labels,)
    _check_sample(graphs.run(module, inputs), graphs.run(module, inputs), shape)
    signature = {
        "z_dim": z_dim,
        "num_labels": labels,
        "sample_shape": shape,
        "image": bool(image),
        "display_scale": _count("display_scale", display_scale),
        "latent": "standard_normal",
    }
    names = (["z", "label"][: len(inputs)], ["x"])
    out = Path(directory)
    graphs.export(module, inputs, out / file, names)  # only now, when nothing is refused
    write_card(out, name, "sampler", {"sample": (file, *names)}, signature, card)
    return out


def export_predictive(
    members_or_stacked: nn.Module | Sequence[nn.Module],
    directory: str | os.PathLike[str],
    *,
    name: str,
    task: Task,
    input_dim: int,
    features: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    target_units: str | None = None,
    classes: Sequence[str] | None = None,
    method: str = "ensemble",
    noise_var: float | None = None,
    x_train: Any = None,
    input_range: tuple[float, float] | None = None,
    file: str = "model.onnx",
    **card: Unpack[CardFields],
) -> Path:
    """Export a predictive model: a list of members (each x [N, D] -> regression (mean, var)
    [N, K] or [N], or the mean alone with `noise_var`; classification logits [N, C]), stacked
    into one graph of S = len(members) draws, or one module that already returns them stacked
    ([S, N, K] / [S, N, C]). The graph takes rows in the features' own units: put any scaling
    inside the modules. `x_train` (rows [n, D]) gives the card's data.feature_summary (min,
    median, max per feature): the page slices inside it and the check draws rows near it.
    Writes `file` (graph role `predict`) and card.json in `directory`, which is returned."""
    torch, graphs = _torch()
    _check_name(name)
    if task not in OUTPUTS:
        raise ValueError(f"task must be 'regression' or 'classification', is {task!r}")
    input_dim = _count("input_dim", input_dim)
    members = _members(torch, members_or_stacked)
    module: nn.Module = (
        graphs.StackedModule(members_or_stacked)
        if members is None
        else graphs.StackedMembers(members, task, noise_var)
    )
    x = _example_rows(torch, x_train, input_dim, input_range)
    draws, width = _check_predictive(graphs.run(module, (x,)), task)
    signature = _predictive_signature(task, input_dim, draws, method, features)
    signature |= _labelled(task, targets, target_units, classes, width)
    if input_range is not None:
        signature["input_range"] = [float(input_range[0]), float(input_range[1])]
    card["data"] = _with_summary(card.get("data"), x_train, signature.get("features"))
    names = (["x"], OUTPUTS[task])
    out = Path(directory)
    graphs.export(module, (x,), out / file, names)  # only now, when nothing is refused
    write_card(out, name, "predictive", {"predict": (file, *names)}, signature, card)
    return out


def feature_summary(x_train: Any, features: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per feature of the rows `x_train` [n, D]: min, median (halfway between the middle two of
    an even count) and max, the card's data.feature_summary."""
    torch, _ = _torch()
    rows = torch.as_tensor(x_train, dtype=torch.float64)
    if rows.dim() != 2 or rows.shape[1] != len(features):
        raise ValueError(f"x_train must be [n, {len(features)}] rows, is {list(rows.shape)}")
    low, mid, high = rows.min(0).values, rows.quantile(0.5, dim=0), rows.max(0).values
    return {
        f: {"min": _short(low[i]), "median": _short(mid[i]), "max": _short(high[i])}
        for i, f in enumerate(features)
    }


def _short(value: Any) -> float:
    """Seven significant digits: float32 rows read 25.6, not 25.600000381469727."""
    return float(f"{float(value):.7g}")


def write_card(
    directory: Path,
    name: str,
    kind: str,
    graphs: dict[str, tuple[str, list[str], list[str]]],
    signature: dict[str, Any],
    fields: CardFields,
) -> dict[str, Any]:
    """card.json for the graph files in `directory` (role -> (file, inputs, outputs)), each
    with the sha256 of its bytes, as the registry checks them."""
    card: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "format": "onnx",
        "graphs": {
            role: {"file": f, "sha256": sha256_file(directory / f), "inputs": i, "outputs": o}
            for role, (f, i, o) in graphs.items()
        },
        "files": {},
        "signature": signature,
        "description": fields.get("description", ""),
        "seed": fields.get("seed"),
        "data": fields.get("data"),
        "metrics": fields.get("metrics") or {},
        "command": fields.get("command"),
        "code_revision": fields.get("code_revision"),
    }
    (directory / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- checks in torch, before the export ---------------------------------------------------------


def _torch() -> tuple[Any, Any]:
    """torch and the graph helpers, or an ImportError saying which extra to install."""
    try:
        import torch

        from hanmo_client import _export_graphs
    except ImportError as exc:
        raise ImportError(f"exporting needs torch and onnx: {EXTRA} ({exc})") from exc
    return torch, _export_graphs


def _check_name(name: str) -> None:
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(f"name {name!r} must match {NAME_PATTERN} (lowercase, digits, ._-)")


def _count(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field} must be an int >= 1, is {value!r}")
    return value


def _labels(num_labels: int | None) -> int | None:
    return None if num_labels is None else _count("num_labels", num_labels)


def _members(torch: Any, given: nn.Module | Sequence[nn.Module]) -> list[nn.Module] | None:
    """The members of an ensemble (a list or an nn.ModuleList); None for a stacked module."""
    if isinstance(given, Sequence):
        members = list(given)
    elif isinstance(given, torch.nn.ModuleList):
        members = list(given.children())
    else:
        return None
    if not members:
        raise ValueError("members_or_stacked is empty: give at least one member")
    return members


def _check_sample(first: tuple[Tensor, ...], again: tuple[Tensor, ...], shape: list[int]) -> None:
    """x is [N, ...] with the card's sample size, finite, and the same on the same z."""
    x = first[0]
    if x.dim() < 2 or x.shape[0] != EXAMPLE_ROWS:
        raise ValueError(
            f"the decoder returned {list(x.shape)} on {EXAMPLE_ROWS} rows of z: rows are axis 0"
        )
    if math.prod(x.shape[1:]) != math.prod(shape):
        raise ValueError(
            f"one sample is {list(x.shape[1:])}, sample_shape is {shape}: make them agree"
        )
    if not bool(x.isfinite().all()):
        raise ValueError("the decoder gives NaN or Inf on standard normal z")
    if not bool((x == again[0]).all()):
        raise ValueError(
            "the decoder gives different x for the same z: it draws noise inside (or runs "
            "dropout); hanmo makes the noise, so return the distribution's mean or take the "
            "randomness as part of z"
        )


def _check_predictive(outputs: tuple[Tensor, ...], task: str) -> tuple[int, int]:
    """Outputs [S, N, K] as the task needs, finite, var > 0; returns (S, K)."""
    wanted = OUTPUTS[task]
    if len(outputs) != len(wanted):
        raise ValueError(f"a {task} model returns {wanted}, this one {len(outputs)} tensors")
    for name, value in zip(wanted, outputs, strict=True):
        if value.dim() != 3 or value.shape[1] != EXAMPLE_ROWS:
            raise ValueError(
                f"`{name}` is {list(value.shape)} on {EXAMPLE_ROWS} rows: it must be "
                "[S draws, N rows, K]"
            )
        if not bool(value.isfinite().all()):
            raise ValueError(f"`{name}` has NaN or Inf on the example rows")
    if outputs[0].shape != outputs[-1].shape:
        raise ValueError(f"mean is {list(outputs[0].shape)}, var is {list(outputs[-1].shape)}")
    if task == "regression" and not bool((outputs[1] > 0).all()):
        raise ValueError("`var` must be positive (add a floor, e.g. softplus(raw) + 1e-6)")
    return int(outputs[0].shape[0]), int(outputs[0].shape[2])


def _example_rows(
    torch: Any, x_train: Any, input_dim: int, input_range: tuple[float, float] | None
) -> Tensor:
    """Rows to trace with: the first training rows, else random rows in the input range."""
    if x_train is not None:
        rows: Tensor = torch.as_tensor(x_train, dtype=torch.float32)[:EXAMPLE_ROWS]
        if rows.dim() != 2 or rows.shape != (EXAMPLE_ROWS, input_dim):
            raise ValueError(f"x_train must be [n >= {EXAMPLE_ROWS}, {input_dim}] rows")
        return rows
    low, high = input_range if input_range is not None else (-1.0, 1.0)
    generator = torch.Generator().manual_seed(0)
    uniform = torch.rand(EXAMPLE_ROWS, input_dim, generator=generator)
    return low + (high - low) * uniform  # type: ignore[no-any-return]


def _predictive_signature(
    task: str, input_dim: int, draws: int, method: str, features: Sequence[str] | None
) -> dict[str, Any]:
    signature: dict[str, Any] = {"task": task, "input_dim": input_dim, "draws": draws}
    if features is not None:
        if len(features) != input_dim:
            raise ValueError(f"{len(features)} features for input_dim {input_dim}")
        signature["features"] = list(features)
    signature["method"] = method
    return signature


def _labelled(
    task: str,
    targets: Sequence[str] | None,
    units: str | None,
    classes: Sequence[str] | None,
    width: int,
) -> dict[str, Any]:
    """targets (and target_units) of a regression, classes of a classifier, one per column."""
    names, field = (targets, "targets") if task == "regression" else (classes, "classes")
    if names is not None and len(names) != width:
        raise ValueError(f"{len(names)} {field} for {width} output columns")
    given: dict[str, Any] = {field: list(names)} if names is not None else {}
    if task == "regression" and units is not None:
        given["target_units"] = units
    return given


def _with_summary(data: Any, x_train: Any, features: list[str] | None) -> Any:
    """The card's data with feature_summary from x_train (kept when the data gives one)."""
    if x_train is None:
        return data
    if not features:
        raise ValueError("x_train needs features= (the summary is keyed by feature name)")
    given = {"source": data} if isinstance(data, str) else dict(data or {})
    given.setdefault("feature_summary", feature_summary(x_train, features))
    return given
