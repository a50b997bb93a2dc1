"""Artifacts behind an fsspec URL: a worker copies a remote artifact into its local cache,
verified by checksum, and serves it from there."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest

from app.errors import ArtifactCorrupt
from app.registry import artifacts
from app.registry.cards import read_card
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import live_api, worker_thread


def test_remote_artifact_is_cached_on_the_worker_and_served(
    settings: Settings, tiny_dir: Path
) -> None:
    remote = settings.model_copy(update={"artifact_root": "memory://hanmo-artifacts"})
    served = register_directory(remote, tiny_dir, "production")
    assert served.artifact_uri == "tiny-sampler/1"  # recorded relative to the root
    assert (
        artifacts.located(served.artifact_uri, remote) == "memory://hanmo-artifacts/tiny-sampler/1"
    )
    with worker_thread(remote), live_api(remote) as client:
        response = client.post("/v1/models/tiny-sampler/sample", json={"seed": 1})
    cached = remote.resolved_cache_dir() / served.parsed_card().digest()
    assert response.status_code == 200
    assert (cached / "model.onnx").read_bytes() == (tiny_dir / "model.onnx").read_bytes()
    assert (cached / ".complete").exists()


def test_corrupted_remote_artifact_is_refused_by_the_cache(
    settings: Settings, tiny_dir: Path
) -> None:
    remote = settings.model_copy(update={"artifact_root": "memory://hanmo-corrupt"})
    served = register_directory(remote, tiny_dir, None)
    with fsspec.open(f"{artifacts.located(served.artifact_uri, remote)}/model.onnx", "wb") as fh:
        fh.write(b"tampered")
    with pytest.raises(ArtifactCorrupt):
        artifacts.local_path(
            served.artifact_uri, served.parsed_card(), remote, remote.resolved_cache_dir()
        )
    assert not (remote.resolved_cache_dir() / served.parsed_card().digest()).exists()


def test_verify_directory_names_every_missing_or_differing_file(
    tiny_dir: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "two"
    directory.mkdir()
    (directory / "model.onnx").write_bytes(b"not the graph")
    card = read_card(tiny_dir).model_copy(update={"files": {"notes.txt": "0" * 64}})
    with pytest.raises(ArtifactCorrupt) as raised:
        artifacts.verify_directory(directory, card)
    problems = raised.value.extensions["problems"]
    assert problems[0].startswith("model.onnx: sha256 is")
    assert problems[1].startswith("file 'notes.txt' named in card.json is missing")
