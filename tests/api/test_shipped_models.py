"""The sampling properties, on every sampler shipped in models/ (what `make up` serves):
the same request twice is byte-identical; sample i does not depend on n; a request's result
does not depend on what else was in its batch."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from app.cli import register_directory, shipped_model_dirs
from app.settings import Settings
from tests.helpers import ROOT, live_api, worker_thread

SHIPPED = [versions[-1] for versions in shipped_model_dirs(ROOT / "models")]


def request_for(card: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"format": "array", **extra}
    if card["signature"].get("num_labels"):
        body["labels"] = 3
    return body


@pytest.mark.parametrize("directory", SHIPPED, ids=[d.parent.name for d in SHIPPED])
def test_shipped_sampler_is_reproducible(settings: Settings, directory: Path) -> None:
    card = json.loads((directory / "card.json").read_text())
    register_directory(settings, directory, "production")
    url = f"/v1/models/{card['name']}/sample"
    with worker_thread(settings), live_api(settings) as client:
        first = client.post(url, json=request_for(card, n=8, seed=21, format="png"))
        again = client.post(url, json=request_for(card, n=8, seed=21, format="png"))
        small = client.post(url, json=request_for(card, n=8, seed=5)).json()
        large = client.post(url, json=request_for(card, n=64, seed=5)).json()
        with ThreadPoolExecutor(16) as pool:
            others = [
                pool.submit(client.post, url, json=request_for(card, n=4, seed=s))
                for s in range(1000, 1050)
            ]
            batched = pool.submit(client.post, url, json=request_for(card, n=8, seed=5))
            assert all(f.result().status_code == 200 for f in others)
            batched_body = batched.result().json()
    assert first.status_code == 200, first.text
    assert first.json()["samples"] == again.json()["samples"]
    assert small["samples"] == large["samples"][:8]
    assert batched_body["samples"] == small["samples"]
