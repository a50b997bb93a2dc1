"""The browser tests' stack: one live uvicorn api and one real worker serving the shipped
models (the `make up` stack, in one process) for the whole package, and Debian's Chromium
driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright import sync_api

from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import ROOT, fresh_settings, live_api, worker_thread
from tests.web.support import MODELS, UNSERVED

CHROMIUM = os.environ.get("HANMO_CHROMIUM") or shutil.which("chromium") or ""

if not CHROMIUM:  # `make test` installs it (make system-deps): fail, never skip silently
    raise RuntimeError(
        "no chromium on PATH: run `make system-deps` (apt-get install chromium), "
        "or set HANMO_CHROMIUM to a Chromium binary"
    )


@pytest.fixture(scope="package")
def stack(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, database_url: str
) -> Iterator[tuple[Settings, httpx.Client]]:
    """A live api and worker with the shipped models the page uses, aliased `production`, and
    one more model registered with no alias (UNSERVED)."""
    settings = fresh_settings(tmp_path_factory.mktemp("web"), redis_url, database_url)
    for name in MODELS:
        register_directory(settings, ROOT / "models" / name / "1", "production")
    register_directory(settings, ROOT / "models" / UNSERVED / "1", None)
    with worker_thread(settings), live_api(settings) as http:
        yield settings, http


@pytest.fixture
def server(stack: tuple[Settings, httpx.Client]) -> httpx.Client:
    return stack[1]


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, server: httpx.Client) -> Iterator[Any]:
    """A fresh page on the live server; an uncaught script error fails the test."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, errors
