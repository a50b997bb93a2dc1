"""Registering a version by URI refuses what could lead out of the register root before
anything is stored (issue 46, "Edges"): symbolic links in the folder, chained URLs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from app.registry.tables import ModelVersion
from app.settings import Settings
from tests.api.test_admin import count, new_key
from tests.helpers import live_api
from training import tiny_sampler

PROBLEM = "application/problem+json"
VERSIONS = "/admin/models/tiny-sampler/versions?wait_s=0"


@pytest.fixture(scope="module")
def tiny_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sampler.build(tmp_path_factory.mktemp("tiny2") / "tiny-sampler", seed=1)


def stored(settings: Settings) -> list[str]:
    """Every path in the artifact store."""
    root = Path(settings.resolved_artifact_root())
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def refused_and_nothing_stored(
    settings: Settings, uris: list[str]
) -> list[tuple[str, httpx.Response]]:
    key = {"Authorization": f"Bearer {new_key(settings, 'admin')}"}
    files, versions = stored(settings), count(settings, ModelVersion)
    with live_api(settings) as http:
        answers = [(uri, http.post(VERSIONS, json={"uri": uri}, headers=key)) for uri in uris]
    for uri, response in answers:
        assert response.status_code == 422, (uri, response.status_code, response.text)
        assert response.headers["content-type"] == PROBLEM
    assert count(settings, ModelVersion) == versions  # no version row
    assert stored(settings) == files  # nothing copied into the artifact store
    return answers


def test_a_folder_with_a_symlink_is_refused_before_any_copy(
    tiny: Settings, tiny_v2: Path, tmp_path: Path
) -> None:
    allowed = tmp_path / "allowed"
    linked = shutil.copytree(tiny_v2, allowed / "linked")
    (linked / "model.onnx").unlink()
    (linked / "model.onnx").symlink_to(tiny_v2 / "model.onnx")  # outside the register root
    inside = shutil.copytree(tiny_v2, allowed / "inside")
    (inside / "model.onnx").unlink()
    (inside / "model.onnx").symlink_to(allowed / "linked" / "card.json")  # a link all the same
    settings = tiny.model_copy(update={"register_roots": [str(allowed)]})
    answers = refused_and_nothing_stored(settings, [f"file://{linked}", f"file://{inside}"])
    for _, response in answers:
        assert "model.onnx is a symbolic link" in response.json()["detail"]


def test_a_folder_with_a_hard_link_is_refused_before_any_copy(
    tiny: Settings, tiny_v2: Path, tmp_path: Path
) -> None:
    allowed = tmp_path / "allowed"
    linked = shutil.copytree(tiny_v2, allowed / "linked")
    (linked / "model.onnx").unlink()
    os.link(tiny_v2 / "model.onnx", linked / "model.onnx")  # the outside file, by another name
    settings = tiny.model_copy(update={"register_roots": [str(allowed)]})
    answers = refused_and_nothing_stored(settings, [f"file://{linked}"])
    for _, response in answers:
        assert "model.onnx is a hard link" in response.json()["detail"]


def test_a_chained_uri_is_refused(tiny: Settings, tiny_v2: Path, tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    folder = shutil.copytree(tiny_v2, allowed / "v2")
    settings = tiny.model_copy(update={"register_roots": [str(allowed)]})
    answers = refused_and_nothing_stored(
        settings,
        [
            f"file://{folder}::memory://elsewhere",
            f"file://{folder}%3A%3Amemory://elsewhere",
            f"simplecache::file://{folder}",
        ],
    )
    for _, response in answers:
        assert "`::`" in response.json()["detail"]
