"""The README's curl examples run as written against a live hanmo serving the shipped models
they name: each block in bash with `set -euo pipefail`, every curl made to fail on an HTTP
error, `localhost:8000` pointed at the test's server. The font block is left out (a 3,755-glyph
job; tests/api/test_style_transfer.py runs a font job on a few characters)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from app.services.registration import register_directory
from tests.helpers import ROOT, fresh_settings, live_api, worker_thread

MODELS = ("vae-digits", "cvae-digits", "flow-digits", "concrete-sghmc", "glyph-style", "bae-digits")
BLOCKS = [
    block
    for block in re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    if "curl " in block and "/font" not in block
]
# every curl fails on an HTTP error status, still printing the body
PREAMBLE = 'set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n'


def test_the_readme_has_the_examples_this_test_runs() -> None:
    assert len(BLOCKS) >= 4, BLOCKS


def answers(printed: str) -> list[dict[str, object]]:
    """The JSON objects curl printed back to back (its answers end without a newline)."""
    decoder, found, at = json.JSONDecoder(), [], printed.find("{")
    while at >= 0:
        value, end = decoder.raw_decode(printed, at)
        found.append(value)
        at = printed.find("{", end)
    return found


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, database_url: str
) -> Iterator[str]:
    """host:port of a live api and worker with the shipped models the examples use."""
    settings = fresh_settings(tmp_path_factory.mktemp("readme"), redis_url, database_url)
    for name in MODELS:
        register_directory(settings, ROOT / "models" / name / "1", "production")
    with worker_thread(settings), live_api(settings) as http:
        yield str(http.base_url).rstrip("/").removeprefix("http://")


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_a_readme_example_runs_as_written(server: str, block: str, tmp_path: Path) -> None:
    (tmp_path / "docs").symlink_to(ROOT / "docs")  # the examples name files under docs/
    done = subprocess.run(
        ["bash", "-c", PREAMBLE + block.replace("localhost:8000", server)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{block}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    for answer in answers(done.stdout):  # each JSON answer printed is a result, not a problem
        assert "title" not in answer, answer
    for name in re.findall(r" -o (\S+)", block):  # the files it says it writes are images
        with Image.open(tmp_path / name) as image:
            image.verify()
