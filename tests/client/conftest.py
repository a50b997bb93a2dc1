"""A live hanmo for the client's tests: uvicorn and a worker thread (real Redis, real ONNX
Runtime) serving the tiny sampler and a shipped model of each other kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.services.registration import register_directory
from tests.helpers import ROOT, fresh_settings, live_api, worker_thread

SHIPPED = ("flow-digits", "concrete-sghmc", "digits-sghmc", "glyph-style", "bae-digits")


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, database_url: str, tiny_dir: Path
) -> Iterator[str]:
    """The base URL of a live api with a worker: tiny-sampler, flow-digits (a density),
    concrete-sghmc (regression), digits-sghmc (classification), glyph-style."""
    settings = fresh_settings(tmp_path_factory.mktemp("served"), redis_url, database_url)
    register_directory(settings, tiny_dir, "production")
    for name in SHIPPED:
        register_directory(settings, ROOT / "models" / name / "1", "production")
    with worker_thread(settings), live_api(settings) as http:
        yield str(http.base_url)
