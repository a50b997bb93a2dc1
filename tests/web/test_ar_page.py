"""The Sample tab draws an autoregressive model's samples as their rows stream (issue 50,
item 4): a tiny masked-linear step graph (tests/ar_models.py) served beside the shipped
models for this test only; the rows drawn on the canvas, then the grid, pixel for pixel the
API's grid for the same request."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx

from app.registry import aliases, versions
from app.registry.db import make_engine, make_sessionmaker
from app.services.registration import register_directory
from app.settings import Settings
from tests.ar_models import save_ar
from tests.helpers import wait_until
from tests.web.support import PIXELS, rgba


def test_rows_are_drawn_as_they_stream(
    page: Any, stack: tuple[Settings, httpx.Client], tmp_path: Path
) -> None:
    settings, server = stack
    register_directory(settings, save_ar(tmp_path / "page-ar", name="page-ar"), "production")
    try:
        body = {"n": 16, "seed": 7, "temperature": 1.0, "format": "grid"}
        wait_until(
            lambda: server.post("/v1/models/page-ar/sample", json=body).status_code == 200,
            timeout_s=60,
            awaiting="the stack's worker to serve page-ar",
        )
        page.goto(f"{server.base_url}/#sample")
        page.locator("#sample-grid[data-seed='7']").wait_for()
        page.select_option("#sample-n", "16")
        page.select_option("#sample-model", "page-ar")
        page.locator("#sample-caption", has_text="page-ar v1").wait_for()
        assert page.locator("#sample-canvas").get_attribute("data-rows") == "8"  # all 8 drawn
        assert page.locator("#sample-canvas").is_hidden()  # the grid replaced it at the end
        shown = page.locator("#sample-grid").evaluate(PIXELS)
        answer = server.post("/v1/models/page-ar/sample", json=body)
        assert shown == rgba(base64.b64decode(answer.json()["grid"]))
    finally:  # gone again: the other page tests see the shipped models alone
        engine = make_engine(settings.resolved_database_url())
        with make_sessionmaker(engine).begin() as session:
            aliases.delete_alias(session, "test", "page-ar", "production")
            versions.delete_model(session, "test", "page-ar")
        engine.dispose()
