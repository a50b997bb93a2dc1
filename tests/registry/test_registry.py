"""Registering model directories: checksums, kind contracts, versions, aliases."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.errors import ArtifactCorrupt, Conflict, ContractViolation
from app.registry import artifacts
from app.registry.db import make_engine, make_sessionmaker
from app.registry.tables import AliasEvent, ModelVersion
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import ROOT, settings_env
from training import tiny_sampler


def copy_model(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def rows(settings: Settings, table: type) -> int:  # type: ignore[type-arg]
    engine = make_engine(settings.resolved_database_url())
    with make_sessionmaker(engine)() as session:
        count = session.scalar(select(func.count()).select_from(table))
    engine.dispose()
    return int(count or 0)


def test_register_is_idempotent_and_versions_new_bytes(
    settings: Settings, tiny_dir: Path, tmp_path: Path
) -> None:
    first = register_directory(settings, tiny_dir, "production")
    again = register_directory(settings, tiny_dir, "production")
    other = tiny_sampler.build(tmp_path / "v2", seed=1)
    second = register_directory(settings, other, "staging")
    assert (first.version, again.version, second.version) == (1, 1, 2)
    assert first.sha256 == again.sha256 != second.sha256
    assert first.artifact_uri == "tiny-sampler/1"  # relative to the artifact root
    stored = Path(artifacts.located(first.artifact_uri, settings)) / "model.onnx"
    assert stored.is_file()
    assert str(stored).startswith(str(settings.resolved_artifact_root()))
    assert rows(settings, ModelVersion) == 2
    assert rows(settings, AliasEvent) == 2  # production once (not re-set), staging once


def test_checksum_mismatch_is_refused(settings: Settings, tiny_dir: Path, tmp_path: Path) -> None:
    broken = copy_model(tiny_dir, tmp_path / "broken")
    with (broken / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtifactCorrupt, match="sha256"):
        register_directory(settings, broken, "production")
    assert rows(settings, ModelVersion) == 0


def test_graph_that_breaks_the_contract_is_refused(
    settings: Settings, tiny_dir: Path, tmp_path: Path
) -> None:
    wrong = copy_model(tiny_dir, tmp_path / "wrong")
    card = json.loads((wrong / "card.json").read_text())
    card["signature"]["z_dim"] = 8
    (wrong / "card.json").write_text(json.dumps(card))
    with pytest.raises(ContractViolation, match="8"):
        register_directory(settings, wrong, "production")
    card["signature"]["z_dim"], card["signature"]["sample_shape"] = 16, [32, 32]
    (wrong / "card.json").write_text(json.dumps(card))
    with pytest.raises(ContractViolation, match="shape"):
        register_directory(settings, wrong, "production")
    assert rows(settings, ModelVersion) == 0


def test_file_that_is_not_a_graph_is_refused(
    settings: Settings, tiny_dir: Path, tmp_path: Path
) -> None:
    fake = copy_model(tiny_dir, tmp_path / "fake")
    (fake / "model.onnx").write_bytes(b"not a graph")
    card = json.loads((fake / "card.json").read_text())
    from app.registry.cards import sha256_file

    card["graphs"]["sample"]["sha256"] = sha256_file(fake / "model.onnx")
    (fake / "card.json").write_text(json.dumps(card))
    with pytest.raises(ContractViolation, match="does not load"):
        register_directory(settings, fake, "production")


def test_same_name_other_kind_conflicts(settings: Settings, tiny_dir: Path, tmp_path: Path) -> None:
    register_directory(settings, tiny_dir, "production")
    other = copy_model(tiny_dir, tmp_path / "other")
    card = json.loads((other / "card.json").read_text())
    card["kind"] = "predictive"
    (other / "card.json").write_text(json.dumps(card))
    with pytest.raises((Conflict, ContractViolation)):
        register_directory(settings, other, "production")


def test_cli_registers_and_lists(settings: Settings, tiny_dir: Path) -> None:
    env = settings_env(settings)
    registered = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "models",
            "register",
            str(tiny_dir),
            "--alias",
            "production",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    listed = subprocess.run(
        [sys.executable, "-m", "app.cli", "models", "list"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "registered tiny-sampler version 1" in registered.stdout
    assert 'tiny-sampler (sampler): v1 READY; aliases {"production": 1}' in listed.stdout
