"""The `hanmo` command's registration of shipped models (`hanmo up`, docker compose's
`migrate`): a restart registers what is shipped and never moves an alias a person moved."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.registry import aliases, versions
from app.registry.local import in_transaction
from app.services.registration import register_shipped
from app.settings import Settings
from app.up import default_api_processes
from tests.helpers import ROOT, settings_env
from training import tiny_sampler


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Path:
    """A model repository: tiny-sampler versions 1 and 2 (other weights)."""
    models = tmp_path_factory.mktemp("shipped") / "models"
    shutil.copytree(tiny_dir, models / "tiny-sampler" / "1")
    tiny_sampler.build(models / "tiny-sampler" / "2", seed=1)
    return models


def production(settings: Settings) -> int:
    return int(in_transaction(settings, aliases.get_alias, "tiny-sampler", "production")["version"])


def person_moves_production_to_v1(settings: Settings) -> None:
    """What PUT /admin/models/tiny-sampler/aliases/production {"version": 1} commits."""
    in_transaction(
        settings, aliases.request_alias, "ops-key", "tiny-sampler", "production",
        aliases.Target(1), immediate=True,
    )  # fmt: skip


def history(settings: Settings) -> list[tuple[str, str, int | None]]:
    events = in_transaction(settings, aliases.alias_history, "tiny-sampler", "production")
    return [(e["action"], e["actor"], e["to"]["version"]) for e in events]


def test_a_restart_leaves_an_alias_a_person_moved(settings: Settings, shipped: Path) -> None:
    said: list[str] = []
    register_shipped(settings, shipped, said.append)
    assert production(settings) == 2
    person_moves_production_to_v1(settings)
    said.clear()
    register_shipped(settings, shipped, said.append)  # `make up` again
    assert production(settings) == 1
    assert history(settings) == [("set", "cli", 2), ("move", "ops-key", 1)]
    assert said[:2] == ["model tiny-sampler v1 registered", "model tiny-sampler v2 registered"]
    assert said[2].startswith("model tiny-sampler: production stays at v1 (")
    assert "shipped newest is v2" in said[2]


def test_compose_migrate_leaves_an_alias_a_person_moved(
    settings: Settings, shipped: Path, tmp_path: Path
) -> None:
    """docker-compose.yml's `migrate` command as written, run twice in a folder holding
    models/, with the `hanmo` of this environment."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = [part.replace("$$", "$") for part in compose["services"]["migrate"]["command"]]
    shutil.copytree(shipped, tmp_path / "models")
    env = settings_env(settings)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"

    def migrate() -> None:
        done = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr

    migrate()
    assert production(settings) == 2
    person_moves_production_to_v1(settings)
    migrate()  # `docker compose up` again
    assert production(settings) == 1
    assert history(settings) == [("set", "cli", 2), ("move", "ops-key", 1)]


def test_register_lists_every_file_whose_sha256_differs_at_once(
    settings: Settings, tiny_dir: Path, tmp_path: Path
) -> None:
    """`hanmo models register` checks every file before it stops (issue 45, item 6)."""
    broken = shutil.copytree(tiny_dir, tmp_path / "broken")
    card = json.loads((broken / "card.json").read_text())
    card["files"] = {"notes.txt": "0" * 64}
    (broken / "card.json").write_text(json.dumps(card))
    (broken / "notes.txt").write_text("not the bytes the card was written for")
    with (broken / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "models", "register", str(broken)],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout
    problems = done.stderr.splitlines()
    assert [line.split(":")[1].strip() for line in problems] == ["model.onnx", "notes.txt"]
    assert all("sha256 is" in line and "card says" in line for line in problems)
    listed = in_transaction(settings, lambda session: versions.list_models(session, 10, 0))
    assert listed["total"] == 0


def test_default_api_processes_use_both_cores_of_a_small_machine() -> None:
    """The api is the ceiling for small models: a 2-core machine runs 2 api processes."""
    cores = (1, 2, 3, 4, 6, 8, 16, 64)
    assert [default_api_processes(c) for c in cores] == [1, 2, 2, 2, 3, 4, 4, 4]
