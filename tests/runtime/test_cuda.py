"""The CUDA execution provider path. Runs only on a machine with an NVIDIA GPU (CI has none;
it is run on a lent GPU machine); onnxruntime-gpu lists CUDA as available without one, so the
check is for a working `nvidia-smi`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from app.noise import standard_normal_rows
from app.runtime.sessions import OnnxGraph


def has_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    return bool(smi) and subprocess.run([smi, "-L"], capture_output=True).returncode == 0


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not has_gpu(), reason="needs an NVIDIA GPU (nvidia-smi -L)"),
]


def test_cuda_session_uses_the_cuda_provider_and_matches_cpu(tiny_dir: Path) -> None:
    cuda = OnnxGraph(tiny_dir / "model.onnx", "cuda:0")
    cpu = OnnxGraph(tiny_dir / "model.onnx", "cpu")
    z = standard_normal_rows(1, 64, 16)
    assert cuda.provider == "CUDAExecutionProvider"
    np.testing.assert_allclose(cuda.run({"z": z})["x"], cpu.run({"z": z})["x"], atol=1e-5)


def test_cuda_rows_across_batch_sizes(tiny_dir: Path) -> None:
    """Records whether rows stay bit-identical across batch sizes on CUDA (they do on CPU)."""
    graph = OnnxGraph(tiny_dir / "model.onnx", "cuda:0")
    z = standard_normal_rows(3, 257, 16)
    alone = graph.run({"z": z[:1]})["x"][0]
    for rows in (2, 8, 64, 257):
        batched = graph.run({"z": z[:rows]})["x"][0]
        np.testing.assert_allclose(batched, alone, atol=1e-5)
        print(f"rows={rows} bit_identical={np.array_equal(batched, alone)}")
