"""Fixtures on real services. HANMO_TEST_DATABASE_URL / HANMO_TEST_REDIS_URL point at
Postgres and Redis when set (CI sets them); otherwise SQLite and an embedded Redis."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.redis_conn import EmbeddedRedis
from app.registry.db import upgrade
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import fresh_settings
from training import tiny_sampler


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("HANMO_TEST_REDIS_URL")
    if given:
        yield given
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database for the session, migrated to head (Postgres or SQLite)."""
    given = os.environ.get("HANMO_TEST_DATABASE_URL")
    if not given:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'registry.db'}"
        upgrade(url)
        yield url
        return
    name = f"hanmo_test_{secrets.token_hex(4)}"
    admin_url = make_url(given).set(drivername="postgresql+psycopg")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, database_url: str) -> Settings:
    """Settings for one test: clean Redis, empty registry, fast timeouts."""
    return fresh_settings(tmp_path, redis_url, database_url)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny MLP sampler exported to ONNX once per session."""
    return tiny_sampler.build(tmp_path_factory.mktemp("tiny") / "tiny-sampler")


@pytest.fixture
def tiny(settings: Settings, tiny_dir: Path) -> Settings:
    """The tiny sampler registered and aliased `production`."""
    register_directory(settings, tiny_dir, "production")
    return settings
