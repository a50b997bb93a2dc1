"""Check an uploaded version in a process of its own: fetch the artifact, verify every file's
sha256, load its graphs and run its kind's contract check (random inputs at two batch sizes)
and a warm-up batch; every problem found is in the message (app/runtime/checks.py).

`python -m app.runtime.check_process URI CACHE_DIR DEVICE` prints one JSON line
`{"ok": bool, "message": str}`; the URI is the stored one (relative to HANMO_ARTIFACT_ROOT, or
absolute), read with the HANMO_S3_* settings of its environment. Workers call `run_check`,
which runs that process with a timeout and the worker's own artifact root and storage settings
in its environment, so a graph that crashes or hangs the runtime takes down only the check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pydantic import SecretStr

from app.registry import artifacts
from app.registry.cards import parse_card
from app.registry.service import ServedVersion
from app.runtime.models import load_model
from app.settings import Settings

# What the check process needs of its parent's settings to find and read the artifact.
STORAGE_SETTINGS = ("s3_endpoint_url", "s3_access_key_id", "s3_secret_access_key", "s3_region")


def check(uri: str, settings: Settings, device: str) -> tuple[bool, str]:
    try:
        fs, path = artifacts.open_fs(artifacts.located(uri, settings), settings)
        card = parse_card(fs.cat_file(f"{path}/card.json"))
        served = ServedVersion(
            card.name, 0, card.kind, card.format, card.digest(), uri, card.model_dump(mode="json")
        )
        model = load_model(served, settings, device, 1, verify_files=True)
    except Exception as exc:  # any failure is the version's, reported, never raised
        return False, f"{type(exc).__name__}: {exc}"[:2000]
    return True, f"loaded on {model.provider}, warm-up {model.warmup_ms:.1f} ms"


def storage_environment(settings: Settings) -> dict[str, str]:
    """The environment that gives the check process `settings`' artifact root and storage
    settings (every one, set or empty, so none leaks in from another source)."""
    env = {"HANMO_ARTIFACT_ROOT": settings.resolved_artifact_root()}
    for name in STORAGE_SETTINGS:
        value = getattr(settings, name)
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        env[f"HANMO_{name.upper()}"] = text
    return env


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
            command,
            capture_output=True,
            text=True,
            timeout=settings.check_timeout_s,
            env={**os.environ, **storage_environment(settings)},
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
    ok, message = check(uri, Settings(cache_dir=Path(cache_dir)), device)
    sys.stdout.write(json.dumps({"ok": ok, "message": message}) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
