"""examples/bring_your_own_model run as a user runs it, at tiny sizes: a separate process that
trains a VAE and an ensemble in plain PyTorch, exports them with hanmo_client.export, checks
them with `hanmo models check` and talks to a live api (a real worker, Redis, the database)
through the public HTTP API only. Then the test asks the api itself what the example left."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.registry.local import bootstrap_admin_key
from app.settings import Settings
from tests.helpers import ROOT, live_api, worker_thread

EXAMPLE = ROOT / "examples" / "bring_your_own_model"
SAMPLER, PREDICTIVE = "my-vae", "my-ensemble"
SAMPLE = {"n": 4, "seed": 7, "format": "array"}  # what the example asks for
# the example trains with torch and scikit-learn (the training extra); the test never imports them
pytestmark = pytest.mark.skipif(
    not all(find_spec(m) for m in ("torch", "sklearn", "onnxscript")),
    reason="the example needs torch, scikit-learn and onnxscript (hanmo[training])",
)


def test_example_imports_neither_the_server_nor_the_training_package() -> None:
    imported = set()
    for path in EXAMPLE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert "hanmo_client" in imported
    assert not imported & {"app", "training", "tests"}


def run_example(http: httpx.Client, key: str, out: Path) -> tuple[int, str, list[dict[str, Any]]]:
    """The example in a process of its own, outside the checkout (no PYTHONPATH): it finds
    hanmo_client and the `hanmo` command where a user's install puts them."""
    report = out / "report.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE / "train_and_serve.py"),
            *("--api", str(http.base_url), "--admin-key", key, "--tiny"),
            *("--out", str(out / "models"), "--report", str(report)),
            *("--hanmo", str(Path(sys.executable).parent / "hanmo")),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=out,
        env=env,
    )
    steps = json.loads(report.read_text())["steps"] if report.exists() else []
    for step in steps:  # the timeline, seen with -s
        print(f"{step['at'] - steps[0]['at']:6.1f} s  {step['step']} {step.get('model', '')}")
    return done.returncode, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}", steps


def of(steps: list[dict[str, Any]], name: str, model: str) -> list[dict[str, Any]]:
    return [s for s in steps if s["step"] == name and s.get("model") == model]


def index(steps: list[dict[str, Any]], step: dict[str, Any]) -> int:
    return next(i for i, s in enumerate(steps) if s is step)


@pytest.mark.slow  # a process that imports torch, trains, exports thrice: 16 s idle, 60 s loaded
def test_example_trains_checks_uploads_pins_promotes_and_rolls_back(
    tiny: Settings, tmp_path: Path
) -> None:
    key = bootstrap_admin_key(tiny)
    assert key is not None
    with worker_thread(tiny), live_api(tiny) as http:
        code, output, steps = run_example(http, key, tmp_path)
        refused = [s for s in steps if s["step"] == "pinned request refused"]
        assert not refused, f"a pinned request to a READY version no alias holds: {refused}"
        assert code == 0, output
        admin = {"Authorization": f"Bearer {key}"}
        assert_checked_and_uploaded(steps)
        assert_pinned_before_promoted(steps)
        assert_served_as_the_example_left_it(http, admin, steps)


def assert_checked_and_uploaded(steps: list[dict[str, Any]]) -> None:
    checks = [s for s in steps if s["step"] == "check"]
    assert len(checks) == 3  # two sampler versions, one predictive
    assert all(c["ok"] and c["lines"][-1].startswith("ok: ") for c in checks), checks
    uploads = of(steps, "upload", SAMPLER) + of(steps, "upload", PREDICTIVE)
    assert [(u["model"], u["version"], u["status"]) for u in uploads] == [
        (SAMPLER, 1, "READY"),
        (SAMPLER, 2, "READY"),
        (PREDICTIVE, 1, "READY"),
    ]


def assert_pinned_before_promoted(steps: list[dict[str, Any]]) -> None:
    """Each new version answered a request naming it while no alias held it; the alias moved
    after, and then answered the same samples for the same seed."""
    pinned, promoted = of(steps, "sample pinned", SAMPLER), of(steps, "promote", SAMPLER)
    by_alias = of(steps, "sample by alias", SAMPLER)
    assert [p["aliases_before"] for p in pinned] == [{}, {"production": 1}]
    for version, (pin, move, routed) in enumerate(zip(pinned, promoted, by_alias, strict=True), 1):
        assert (pin["version"], pin["alias"], pin["shape"]) == (version, None, [8, 8])
        assert len(pin["samples"]) == 4
        assert index(steps, pin) < index(steps, move) < index(steps, routed)
        assert (move["version"], move["state"]) == (version, "ready")
        assert (routed["version"], routed["alias"]) == (version, "production")
        assert routed["samples"] == pin["samples"]
    assert pinned[0]["samples"] != pinned[1]["samples"]  # another training seed
    (rollback,) = of(steps, "rollback", SAMPLER)
    assert (rollback["version"], rollback["answered"]) == (1, 1)
    (predicted,) = of(steps, "predict pinned", PREDICTIVE)
    (moved,) = of(steps, "promote", PREDICTIVE)
    assert (predicted["version"], predicted["alias"]) == (1, None)
    assert index(steps, predicted) < index(steps, moved)


def assert_served_as_the_example_left_it(
    http: httpx.Client, admin: dict[str, str], steps: list[dict[str, Any]]
) -> None:
    """What the api says now: production back at v1 after v1 -> v2 -> rollback, both versions
    answering pinned as they did for the example, the ensemble with means and intervals."""
    model = http.get(f"/v1/models/{SAMPLER}").json()
    assert model["aliases"] == {"production": 1}
    assert [v["status"] for v in model["versions"]] == ["READY", "READY"]
    history = http.get(f"/admin/models/{SAMPLER}/aliases/production/history", headers=admin)
    moves = [(e["from"]["version"], e["to"]["version"]) for e in history.json()]
    assert (1, 2) in moves, moves
    assert moves[-1] == (2, 1), moves
    pinned = of(steps, "sample pinned", SAMPLER)
    for version in (1, 2):
        answer = http.post(f"/v1/models/{SAMPLER}/sample", json={**SAMPLE, "version": version})
        assert answer.status_code == 200, answer.text
        assert answer.json()["samples"] == pinned[version - 1]["samples"]
    routed = http.post(f"/v1/models/{SAMPLER}/sample", json=SAMPLE).json()
    assert (routed["version"], routed["samples"]) == (1, pinned[0]["samples"])
    row = dict(zip(FEATURES, ROW, strict=True))
    answer = http.post(f"/v1/models/{PREDICTIVE}/predict", json={"inputs": [row]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["version"], body["alias"], body["draws_total"]) == (1, "production", 3)
    (prediction,) = body["predictions"]
    low, high = prediction["interval"]["0.9"]  # one target: a scalar mean, one pair
    assert low < prediction["mean"] < high
    assert prediction["epistemic_std"] > 0  # three members that disagree


FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
ROW = [50.0, 1.0, 25.6, 93.0, 186.0, 113.0, 48.0, 4.0, 4.6, 91.0]  # about each feature's median
