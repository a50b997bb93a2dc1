"""hanmo-client installed the way a user installs it: a fresh venv, `pip install` of
clients/python, then used from inside a project that has its own `app` package (FastAPI's
layout), against a live hanmo. The client must bring neither numpy nor the server's `app`
or `training`, and must not shadow the user's `app`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.settings import Settings
from tests.helpers import ROOT, live_api, worker_thread

pytestmark = pytest.mark.slow  # a venv and a pip install: ~20-40 s

USER_SCRIPT = """
import json, sys
from pathlib import Path

import app  # the user's own package, not hanmo's
from hanmo_client import Hanmo
from hanmo_client.schemas import SampleResponse

with Hanmo(sys.argv[1]) as hanmo:
    result = hanmo.sample("tiny-sampler", n=2, seed=21, format="array")
assert isinstance(result, SampleResponse), type(result)
import hanmo_client
print(json.dumps({
    "user_app": app.WHOSE,
    "app_file": app.__file__,
    "client_file": hanmo_client.__file__,
    "modules": sorted(sys.modules),
    "seed": result.seed,
    "samples": result.samples,
}))
"""


def run(command: list[str], cwd: Path, timeout_s: float = 300) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_pip_installed_client_works_beside_a_users_own_app_package(
    tiny: Settings, tmp_path: Path
) -> None:
    venv, project = tmp_path / "venv", tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "__init__.py").write_text('WHOSE = "the user\'s"\n')
    (project / "use_hanmo.py").write_text(textwrap.dedent(USER_SCRIPT))
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python = str(venv / "bin" / "python")
    run([python, "-m", "pip", "install", "-q", str(ROOT / "clients" / "python")], project, 600)
    with worker_thread(tiny), live_api(tiny) as http:
        used = json.loads(run([python, "use_hanmo.py", str(http.base_url)], project, 60))
        direct = http.post(
            "/v1/models/tiny-sampler/sample", json={"n": 2, "seed": 21, "format": "array"}
        ).json()
    modules = used["modules"]
    assert used["user_app"] == "the user's"
    assert Path(used["app_file"]).is_relative_to(project)
    assert Path(used["client_file"]).is_relative_to(venv)  # the installed copy, not the repo's
    assert not [m for m in modules if m == "numpy" or m.startswith("numpy.")]
    assert not [m for m in modules if m.startswith(("app.", "training"))]
    assert (used["seed"], used["samples"]) == (21, direct["samples"])
