"""Check an uploaded version in a process of its own: fetch the artifact, verify every file's
sha256, load its graphs and run its kind's contract check (random inputs at two batch sizes)
and a warm-up batch; every problem found is in the message (app/runtime/checks.py).

`python -m app.runtime.check_process URI CACHE_DIR DEVICE` prints one JSON line
`{"ok": bool, "message": str}`. Workers call `run_check`, which runs that process with a
timeout, so a graph that crashes or hangs the runtime takes down only the check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import fsspec

from app.registry.cards import parse_card
from app.registry.service import ServedVersion
from app.runtime.models import load_model
from app.settings import Settings


def check(uri: str, cache_dir: Path, device: str) -> tuple[bool, str]:
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        card = parse_card(fs.cat_file(f"{path}/card.json"))
        served = ServedVersion(
            card.name, 0, card.kind, card.format, card.digest(), uri, card.model_dump(mode="json")
        )
        model = load_model(served, device, cache_dir, 1, verify_files=True)
    except Exception as exc:  # any failure is the version's, reported, never raised
        return False, f"{type(exc).__name__}: {exc}"[:2000]
    return True, f"loaded on {model.provider}, warm-up {model.warmup_ms:.1f} ms"


def run_check(uri: str, settings: Settings, device: str) -> tuple[bool, str]:
    """Check the version at `uri` in a process of its own, within the check timeout."""
    command = [
        sys.executable,
        "-m",
        "app.runtime.check_process",
        uri,
        str(settings.resolved_cache_dir()),
        device,
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=settings.check_timeout_s
        )
    except subprocess.TimeoutExpired:
        return False, f"the check did not finish within {settings.check_timeout_s:g} s"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or "").strip().splitlines()[-1:] or [""]
        return False, f"the check process exited with {done.returncode}: {tail[0]}"[:2000]
    verdict = json.loads(lines[-1])
    return bool(verdict["ok"]), str(verdict["message"])


def main(argv: list[str]) -> int:
    uri, cache_dir, device = argv
    ok, message = check(uri, Path(cache_dir), device)
    sys.stdout.write(json.dumps({"ok": ok, "message": message}) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
