"""hanmo installed like real software: the wheels built from this repo, in a fresh venv,
used from a folder outside the source tree. The migrations travel inside the wheel, the base
install's `hanmo` runs, and `hanmo up` serves a model repository given by setting."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, inspect, text

from app.registry.tables import Base
from tests.helpers import ROOT, free_port, wait_until

pytestmark = pytest.mark.slow


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """hanmo and hanmo-client built as wheels, as `make wheel` builds them."""
    out = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("build")  # no build/ or egg-info left in the checkout
    for project in (ROOT, ROOT / "clients" / "python"):
        source = build / project.name
        shutil.copytree(
            project,
            source,
            ignore=shutil.ignore_patterns(
                ".venv*", ".git", ".hanmo", ".cache", "models", "docs", "bench", "tests",
                "__pycache__", "*.egg-info", "build", "dist", ".*_cache", "clients",
            ),
        )  # fmt: skip
        run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, ".", cwd=source)
    built = sorted(out.glob("*.whl"))
    assert [w.name.split("-")[0] for w in built] == ["hanmo", "hanmo_client"], built
    return built


def fresh_venv(where: Path, wheels: list[Path], extras: str = "") -> Path:
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    server, client = wheels
    run(python, "-m", "pip", "install", "-q", "-c", ROOT / "constraints.txt",
        client, f"hanmo{extras} @ {server.as_uri()}", cwd=where)  # fmt: skip
    return where / "bin"


def outside_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: no HANMO_ settings of the test run, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HANMO_", "PYTHON"))}
    return {**env, "HANMO_HOME": str(home), **extra}


def test_the_wheel_holds_the_migrations_and_no_training_package(wheels: list[Path]) -> None:
    import zipfile

    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "app/registry/migrations/env.py" in names
    assert any(n.startswith("app/registry/migrations/versions/") for n in names)
    assert "app/web/index.html" in names
    assert not [n for n in names if n.startswith(("training/", "tests/", "alembic/"))]
    assert any(n.endswith("licenses/LICENSE") for n in names)


@pytest.fixture(scope="module")
def base_install(tmp_path_factory: pytest.TempPathFactory, wheels: list[Path]) -> Path:
    return fresh_venv(tmp_path_factory.mktemp("venv-base"), wheels)


def test_base_install_runs_hanmo_and_migrates_sqlite(base_install: Path, tmp_path: Path) -> None:
    env = outside_env(tmp_path / "home")
    assert "migrate" in run(base_install / "hanmo", "--help", cwd=tmp_path, env=env)
    database = tmp_path / "registry.db"
    env["HANMO_DATABASE_URL"] = f"sqlite:///{database}"
    run(base_install / "hanmo", "migrate", cwd=tmp_path, env=env)
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert head.startswith("0003")
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()
    # without the worker extra, `hanmo worker` says what to install instead of a traceback
    done = subprocess.run(
        [base_install / "hanmo", "worker"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "hanmo[worker]" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def hanmo_up(
    tmp_path_factory: pytest.TempPathFactory, wheels: list[Path], tmp_path: Path
) -> Iterator[str]:
    """`hanmo up` from a wheel install with the worker and embedded extras, outside the source
    tree, serving a model repository named by HANMO_MODELS_DIR."""
    bin_dir = fresh_venv(tmp_path_factory.mktemp("venv-up"), wheels, "[worker,embedded]")
    repository = tmp_path / "my-models"
    shutil.copytree(ROOT / "models" / "tiny-sampler", repository / "tiny-sampler")
    port = free_port()
    env = outside_env(tmp_path / "home", HANMO_MODELS_DIR=str(repository), HANMO_PORT=str(port))
    log = (tmp_path / "up.log").open("w")
    process = subprocess.Popen(
        [bin_dir / "hanmo", "up"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def test_hanmo_up_from_the_wheel_serves_a_repository_given_by_setting(hanmo_up: str) -> None:
    def ready() -> bool:
        try:
            return httpx.get(f"{hanmo_up}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout_s=120, interval_s=0.5)
    answer = httpx.post(
        f"{hanmo_up}/v1/models/tiny-sampler/sample",
        json={"n": 2, "seed": 7, "format": "array"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["version"] == 1
    assert len(body["samples"]) == 2
    docs = httpx.get(f"{hanmo_up}/docs", timeout=5)
    assert docs.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert httpx.get(f"{hanmo_up}/docs-assets/swagger-ui-bundle.js", timeout=5).status_code == 200
