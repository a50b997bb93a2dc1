"""The deployment files: kustomize builds of deploy/kubernetes (with the real kubectl, which
must be installed: these tests fail, never skip, without it), and worker processes that must
not outlive their tests."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import ROOT
from tests.worker.processes import install_leftover_guard

KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("cpu", "gpu")
# kustomize v5 (kubectl 1.27 or newer), as deploy/kubernetes/base/kustomization.yaml says;
# built and checked here with kubectl 1.32 (kustomize v5.5)
KUSTOMIZE_MIN = (5, 0)
INSTALL_HINT = (
    "install kubectl >= 1.27 (https://kubernetes.io/docs/tasks/tools/; Debian bookworm's "
    "kubernetes-client is 1.20, whose kustomize v2 cannot build these overlays)"
)


@pytest.fixture(scope="session", autouse=True)
def leftover_process_guard(request: pytest.FixtureRequest) -> None:
    install_leftover_guard(request.config)


@pytest.fixture(scope="session")
def kubectl() -> str:
    """The kubectl binary, with a kustomize new enough for deploy/kubernetes."""
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail(f"kubectl is not on PATH; the manifest tests need it: {INSTALL_HINT}")
    answer = subprocess.run(
        [path, "version", "--client", "--output=json"], capture_output=True, text=True
    )
    found = json.loads(answer.stdout or "{}").get("kustomizeVersion", "")
    numbers = tuple(int(n) for n in found.lstrip("v").split(".")[:2] if n.isdigit())
    if len(numbers) < 2 or numbers < KUSTOMIZE_MIN:
        pytest.fail(f"{path} embeds kustomize {found or '(unknown: too old)'}; {INSTALL_HINT}")
    return path


def build(kubectl: str, overlay: str) -> list[dict[str, Any]]:
    """`kubectl kustomize deploy/kubernetes/<overlay>` as a list of objects."""
    answer = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES / overlay)], capture_output=True, text=True
    )
    assert answer.returncode == 0, f"kubectl kustomize {overlay} failed:\n{answer.stderr}"
    return [doc for doc in yaml.safe_load_all(answer.stdout) if doc]


@pytest.fixture(scope="session")
def built(kubectl: str) -> dict[str, list[dict[str, Any]]]:
    """Every overlay, built once per session."""
    return {overlay: build(kubectl, overlay) for overlay in OVERLAYS}


def load_yaml(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
