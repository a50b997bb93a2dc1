"""Every shipped model answers as recorded across refactors, for fixed requests: an image's
bytes by their sha256, a JSON answer by its body, stored in shipped_answers.json (first as
hashes on 7263aa6, before the kinds moved to app/kinds, issue 45); a change to a model's
outputs or to how an answer is rendered shows here, named by model and request.

JSON bodies are stored, not hashed, and their numbers compared within RTOL/ATOL: the float32
outputs of the convolutional graphs (dcgan, triplegan, pixelcnn's log-prob) differ in their
last bits between machines of this project (ONNX Runtime picks its kernels by CPU), which a
hash of the body, even rounded, turned into a failure on a machine other than the recorder's.
The images of the same answers are byte-identical across those machines and stay hashed.

`HANMO_RECORD_ANSWERS=1 pytest tests/api/test_shipped_bytes.py` rewrites the file (only do
that when a model or a response format changes on purpose, and say so in the commit)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from app.services.registration import register_directory, shipped_model_dirs
from app.settings import Settings
from tests.helpers import ROOT, live_api, worker_thread

STORED = Path(__file__).with_name("shipped_answers.json")
EXAMPLES = ROOT / "docs" / "examples" / "ma-shan-zheng"
REFS = {"永": "yong.png", "和": "he.png", "书": "shu.png", "法": "fa.png"}
SIGNIFICANT = 9
RTOL, ATOL = 1e-4, 1e-6  # float32 keeps ~7 digits; room for another kernel's rounding
VOLATILE = {"job_id", "href", "prediction_id", "created_at", "finished_at", "elapsed_ms"}


def _stable(body: Any) -> Any:
    """A JSON answer without the fields that differ per job (ids, times), its floats rounded to
    SIGNIFICANT digits: the float64 summaries of a predictive model differed in their last
    bits between this project's Intel and AMD machines (ONNX Runtime's and NumPy's kernels
    differ by CPU), which is not a change of answer; a refactor that moves a value does."""
    if isinstance(body, dict):
        return {k: _stable(v) for k, v in body.items() if k not in VOLATILE}
    if isinstance(body, list):
        return [_stable(v) for v in body]
    if isinstance(body, float):
        return float(f"{body:.{SIGNIFICANT}g}")
    return body


def _recorded(content: bytes, media_type: str) -> Any:
    """What is kept of an answer: a JSON answer's stable body, an image's sha256."""
    if media_type.startswith("application/json"):
        return _stable(json.loads(content))
    return hashlib.sha256(content).hexdigest()


def _same(found: Any, stored: Any) -> bool:
    """Equal, numbers within RTOL (or ATOL near zero), everything else exactly."""
    if isinstance(stored, dict):
        return (
            isinstance(found, dict)
            and found.keys() == stored.keys()
            and all(_same(found[k], stored[k]) for k in stored)
        )
    if isinstance(stored, list):
        return (
            isinstance(found, list)
            and len(found) == len(stored)
            and all(_same(f, s) for f, s in zip(found, stored, strict=True))
        )
    numbers = (int, float)
    if isinstance(stored, float) or isinstance(found, float):
        if not (isinstance(found, numbers) and isinstance(stored, numbers)):
            return False
        return math.isclose(found, stored, rel_tol=RTOL, abs_tol=ATOL)
    return bool(found == stored)


def _requests(card: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], str | None]]:
    """(label, path, body, Accept) for each request this model answers."""
    name, signature = card["name"], card["signature"]
    base = f"/v1/models/{name}"
    if card["kind"] == "autoregressive":
        width, levels = signature["shape"][-1], signature["vocabulary"]
        total = width * signature["shape"][0]
        prefix = [[(i * 5) % levels for i in range(width)], [levels - 1]]
        warm = {"n": 2, "seed": 7, "temperature": 0.8, "prefix": prefix}
        whole = [[(i * 7) % levels for i in range(total)], [levels // 2] * total]
        return [
            ("sample-array", f"{base}/sample", {"n": 4, "seed": 7, "format": "array"}, None),
            ("sample-sheet", f"{base}/sample", {"n": 4, "seed": 7}, "image/png"),
            ("sample-prefix", f"{base}/sample", warm, None),
            ("log-prob", f"{base}/log-prob", {"rows": whole}, None),
        ]
    if card["kind"] == "sampler":
        labels = {"labels": 3} if signature.get("num_labels") else {}
        found = [
            ("sample-array", f"{base}/sample", {"n": 4, "seed": 7, "format": "array", **labels}),
            ("sample-png", f"{base}/sample", {"n": 4, "seed": 7, "format": "png", **labels}),
        ]
        found = [(label, path, body, None) for label, path, body in found]
        found.append(("sample-sheet", f"{base}/sample", {"n": 4, "seed": 7, **labels}, "image/png"))
        path = f"{base}/interpolate"
        found.append(("interpolate", path, {"seeds": [1, 2], "steps": 3, **labels}, None))
        gif = {"seeds": [1, 2], "steps": 3, "format": "gif", **labels}
        found.append(("interpolate-gif", path, gif, None))
        if signature.get("log_prob"):
            dim = signature["log_prob"]["input_dim"]
            rows = [[(i * 7 % 17) / 16 for i in range(dim)], [0.25] * dim]
            found.append(("log-prob", f"{base}/log-prob", {"rows": rows}, None))
        return found
    if card["kind"] == "predictive":
        dim = signature["input_dim"]
        rows = [[float((i * 3) % 11) for i in range(dim)], [1.0] * dim]
        body = {"inputs": rows, "interval": [0.5, 0.9]}
        return [("predict", f"{base}/predict", body, None)]
    if card["kind"] == "autoencoder":
        dim, levels = signature["input_dim"], signature["levels"]
        rows = [[(i * 3) % levels for i in range(dim)], [levels // 2] * dim]
        found = [("reconstruct", f"{base}/reconstruct", {"inputs": rows}, None)]
        if "decode" in card["graphs"]:  # it samples too
            sample = {"n": 4, "seed": 7, "format": "array"}
            found.append(("sample-array", f"{base}/sample", sample, None))
            found.append(("sample-sheet", f"{base}/sample", {"n": 4, "seed": 7}, "image/png"))
        return found
    refs = [
        {"image": base64.b64encode((EXAMPLES / f).read_bytes()).decode(), "char": c}
        for c, f in REFS.items()
    ]
    text = signature["chars"][:3]
    body = {"references": refs, "text": text}
    return [
        ("style-json", f"{base}/style-transfer", body, None),
        ("style-png", f"{base}/style-transfer", body, "image/png"),
    ]


def answers(settings: Settings) -> dict[str, Any]:
    cards = []
    for versions in shipped_model_dirs(ROOT / "models"):
        register_directory(settings, versions[-1], "production")
        cards.append(json.loads((versions[-1] / "card.json").read_text()))
    found: dict[str, Any] = {}
    with worker_thread(settings), live_api(settings) as client:
        for card in cards:
            for label, path, body, accept in _requests(card):
                headers = {"Accept": accept} if accept else {}
                response = client.post(path, json=body, headers=headers)
                assert response.status_code == 200, (card["name"], label, response.text)
                media = response.headers["content-type"]
                found[f"{card['name']} {label}"] = _recorded(response.content, media)
    return found


def test_shipped_models_answer_as_recorded(settings: Settings) -> None:
    found = answers(settings)
    if os.environ.get("HANMO_RECORD_ANSWERS") == "1":
        STORED.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    stored = json.loads(STORED.read_text())
    assert sorted(found) == sorted(stored)
    changed = [key for key in stored if not _same(found[key], stored[key])]
    assert not changed, f"answers changed: {changed}"
