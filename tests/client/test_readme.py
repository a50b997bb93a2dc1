"""The README's example runs as written, against a live hanmo serving the shipped models it
names (from the repository root, where its reference image lives)."""

from __future__ import annotations

import re
import subprocess
import sys

from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import ROOT, live_api, worker_thread

README = ROOT / "clients" / "python" / "README.md"
URL = "http://127.0.0.1:8000"


def test_the_readme_example_runs(settings: Settings) -> None:
    example = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    assert URL in example
    assert example in (ROOT / "README.md").read_text()  # the project README shows the same
    for name in ("vae-digits", "concrete-sghmc", "glyph-style"):
        register_directory(settings, ROOT / "models" / name / "1", "production")
    with worker_thread(settings), live_api(settings) as http:
        code = example.replace(URL, str(http.base_url).rstrip("/"))
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("1 ")  # version, digest, seed
    assert lines[0].endswith(" 7")
    assert lines[2].startswith("['永', '和'] ")
    assert lines[3] == "404 Model not found no model named 'no-such-model'"
