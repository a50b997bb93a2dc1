"""The model card: the contract between a training job, the registry and the workers."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from hanmo_client.schemas import NAME_PATTERN
from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["sampler", "predictive", "style_transfer"]
Format = Literal["onnx", "torchscript"]


class GraphSpec(BaseModel):
    """One graph of a model version: its file, checksum and I/O names."""

    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    inputs: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)


class Card(BaseModel):
    """card.json beside the artifact. Extra fields (data, metrics, ...) are kept as given."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=NAME_PATTERN)
    kind: Kind
    format: Format = "onnx"
    graphs: dict[str, GraphSpec]
    files: dict[str, str] = Field(default_factory=dict, description="side file -> sha256")
    signature: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    seed: int | None = None
    data: dict[str, Any] | str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    command: str | None = None
    code_revision: str | None = None

    def checksums(self) -> dict[str, str]:
        """Every file of the artifact with its expected sha256."""
        return {**{g.file: g.sha256 for g in self.graphs.values()}, **self.files}

    def digest(self) -> str:
        """The version's sha256: a digest over its files' names and checksums."""
        lines = "".join(f"{name} {sha}\n" for name, sha in sorted(self.checksums().items()))
        return hashlib.sha256(lines.encode()).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_card(directory: Path) -> Card:
    """Parse `card.json` in a model directory."""
    return Card.model_validate_json((directory / "card.json").read_text())
