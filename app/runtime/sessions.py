"""Graphs loaded for one device. ONNX Runtime is the primary format; TorchScript artifacts
load through torch, imported only when such an artifact is served."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from app.kinds.base import Graph, TensorInfo

log = logging.getLogger("hanmo.runtime")


_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def providers_for(device: str) -> list[Any]:
    """ONNX Runtime providers for a device string: `cpu` or `cuda:N` (CPU as fallback).
    onnxruntime-gpu lists CUDA as available without a GPU, so the choice follows the setting,
    never `get_available_providers()`."""
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxGraph:
    """An ONNX Runtime InferenceSession with its I/O described."""

    def __init__(
        self, path: Path, device: str, intra_op_threads: int = 0, spin: bool = False
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        if not spin:  # idle intra-op threads sleep instead of spinning between calls
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(
            str(path), sess_options=options, providers=providers_for(device)
        )
        self.provider = self._session.get_providers()[0]
        if device.startswith("cuda") and self.provider != "CUDAExecutionProvider":
            log.warning("runtime.cuda_unavailable path=%s provider=%s", path, self.provider)
        self.inputs = [_info(i) for i in self._session.get_inputs()]
        self.outputs = [_info(o) for o in self._session.get_outputs()]
        self._output_names = [o.name for o in self.outputs]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self._session.run(self._output_names, feeds)
        return dict(zip(self._output_names, values, strict=True))


def _info(arg: Any) -> TensorInfo:
    return TensorInfo(arg.name, _ORT_TYPES.get(arg.type, arg.type), tuple(arg.shape))


class TorchScriptGraph:
    """A TorchScript module; inputs are passed positionally in the card's order."""

    def __init__(
        self,
        path: Path,
        device: str,
        inputs: list[str],
        outputs: list[str],
        intra_op_threads: int = 0,
    ) -> None:
        import torch  # lazily: only workers that serve TorchScript need torch

        if intra_op_threads:
            torch.set_num_threads(intra_op_threads)
        self._torch = torch
        self._device = torch.device(device if device.startswith("cuda") else "cpu")
        module = torch.jit.load(str(path), map_location=self._device)  # type: ignore[no-untyped-call]
        self._module = module.eval()
        self.provider = f"torchscript:{self._device.type}"
        self.inputs = [TensorInfo(name, "", ()) for name in inputs]
        self.outputs = [TensorInfo(name, "", ()) for name in outputs]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        args = [
            torch.from_numpy(np.array(feeds[i.name], copy=True)).to(self._device)  # writable
            for i in self.inputs
            if i.name in feeds
        ]
        with torch.inference_mode():
            result = self._module(*args)
        values = result if isinstance(result, tuple | list) else (result,)
        return {o.name: v.detach().cpu().numpy() for o, v in zip(self.outputs, values, strict=True)}


def load_graph(
    path: Path,
    fmt: str,
    device: str,
    inputs: list[str],
    outputs: list[str],
    intra_op_threads: int = 0,
    spin: bool = False,
) -> Graph:
    """Load one graph file in the given format for the given device (`spin`: ONNX Runtime's
    idle intra-op threads spin between calls instead of sleeping)."""
    if fmt == "torchscript":
        return TorchScriptGraph(path, device, inputs, outputs, intra_op_threads)
    return OnnxGraph(path, device, intra_op_threads, spin)


def runtime_version(fmt: str) -> str:
    """The version string of the library that runs a format."""
    if fmt == "torchscript":
        import torch

        return f"torch {torch.__version__}"
    import onnxruntime as ort

    return f"onnxruntime {ort.__version__}"
