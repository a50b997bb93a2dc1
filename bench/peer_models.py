"""hanmo side by side with LitServe and Ray Serve on the shipped models beyond the tiny sampler
(bench/peer.py does that one): `cvae-digits` sampling, `concrete-sghmc` posterior-predictive
regression, and `glyph-style` writing 16 characters from 4 reference glyphs.

The same conditions as bench/peer.py: the same model directory, one ONNX Runtime thread, one
HTTP and one inference process each, no pinning, `hey` for PEER_SECONDS (8) s per level, the
same request body for all. The peers (bench/litserve_app.py; bench/ray_app.py, which serves the
same API classes) run the graphs through hanmo's session wrapper and hanmo's own NumPy
post-processing (noise, posterior-predictive summaries, glyph PNGs), and their answers are
checked equal to hanmo's before timing. Configurations: no
batching; batch 16 / 5 ms; each system's defaults. Writes bench/out/peer-models.json and
docs/bench/peer-models.png.

    make peer-tools && .venv/bin/python -m bench.peer_models [MODEL ...]
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.hey import INSTALL_HINT, find_hey
from bench.peer import CONFIGS, PEERS, SECONDS, compare, panel
from bench.serving import ROOT

OUT_JSON = ROOT / "bench" / "out" / "peer-models.json"
CHART = ROOT / "docs" / "bench" / "peer-models.png"
EXAMPLES = ROOT / "docs" / "examples" / "ma-shan-zheng"
CONCRETE_ROW = [300.0, 50.0, 50.0, 180.0, 5.0, 950.0, 750.0, 28.0]  # the README's example
TEXT = "永和九年岁在癸丑暮春之初会于山阴"  # 16 distinct characters of the Lanting preface
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Case:
    model: str
    path: str  # hanmo's endpoint under /v1/models/{model}
    body: dict[str, Any]
    levels: tuple[int, ...]
    difference: Callable[[dict[str, Any], dict[str, Any]], float]  # hanmo's vs the peer's


def _samples(a: dict[str, Any], b: dict[str, Any]) -> float:
    return float(np.abs(np.asarray(a["samples"]) - np.asarray(b["samples"])).max())


PREDICTION_FIELDS = ("mean", "std", "epistemic_std", "aleatoric_std", "mc_standard_error")


def _predictions(a: dict[str, Any], b: dict[str, Any]) -> float:
    worst = 0.0
    for x, y in zip(a["predictions"], b["predictions"], strict=True):
        for name in PREDICTION_FIELDS:
            worst = max(worst, abs(x[name] - y[name]))
        for name in ("interval", "credible_interval_mean"):
            for level, bounds in x[name].items():
                worst = max(worst, float(np.abs(np.subtract(bounds, y[name][level])).max()))
    return worst


def _glyphs(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Glyphs whose PNG bytes differ (0 expected), or inf when the characters differ."""
    if [g["char"] for g in a["glyphs"]] != [g["char"] for g in b["glyphs"]]:
        return float("inf")
    return float(sum(x["png"] != y["png"] for x, y in zip(a["glyphs"], b["glyphs"], strict=True)))


def _references() -> list[dict[str, str]]:
    names = {"永": "yong", "和": "he", "书": "shu", "法": "fa"}
    return [
        {"image": base64.b64encode((EXAMPLES / f"{n}.png").read_bytes()).decode(), "char": c}
        for c, n in names.items()
    ]


LEVELS = tuple(int(c) for c in os.environ.get("PEER_LEVELS", "1,4,16,64,256").split(","))
CASES = {
    "cvae-digits": Case(
        "cvae-digits",
        "sample",
        {"n": 1, "seed": 7, "labels": 3, "format": "array"},
        LEVELS,
        _samples,
    ),
    "concrete-sghmc": Case(
        "concrete-sghmc",
        "predict",
        {"inputs": [CONCRETE_ROW], "interval": 0.9},
        LEVELS,
        _predictions,
    ),
    "glyph-style": Case(
        "glyph-style",
        "style-transfer",
        {"references": _references(), "text": TEXT},
        tuple(c for c in LEVELS if c <= 64),  # 16 glyphs a request: 256 in flight is minutes
        _glyphs,
    ),
}


def run_case(case: Case, hey: str, tmp: Path) -> dict[str, Any]:
    body = json.dumps(case.body, ensure_ascii=False)

    def check(hanmo_url: str, peer_url: str) -> float:
        with httpx.Client(timeout=60) as http:
            ours = http.post(hanmo_url, content=body, headers=JSON).json()
            theirs = http.post(peer_url, content=body, headers=JSON).json()
        return case.difference(ours, theirs)

    model_dir = ROOT / "models" / case.model / "1"
    url_path = f"/v1/models/{case.model}/{case.path}"
    runs, differences = compare(hey, model_dir, url_path, body, case.levels, check, tmp, case.model)
    return {"body": body[:200], "difference": differences, "runs": runs}


def chart(results: dict[str, dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(results), len(CONFIGS)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for r, (model, result) in enumerate(results.items()):
        for c, (name, systems) in enumerate(result["runs"].items()):
            panel(axes[r][c], f"{model}: {name}", systems)
        axes[r][0].set_ylabel("p99 latency, ms (log)")
    axes[0][0].legend()
    fig.suptitle("shipped models, 1 ORT thread, hey: throughput against p99 (2 cores)")
    fig.tight_layout()
    CHART.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(CHART, dpi=100)


def main(names: list[str]) -> None:
    hey = find_hey()
    if hey is None:
        sys.exit(INSTALL_HINT)
    for system in PEERS:
        if not system.python.exists():
            sys.exit(f"{system.python} missing: run `make peer-tools`")
    unknown = set(names) - set(CASES)
    if unknown:
        sys.exit(f"unknown models {sorted(unknown)}; choose from {', '.join(CASES)}")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or list(CASES):
            results[name] = run_case(CASES[name], hey, Path(tmp))
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps({"seconds_per_level": SECONDS, "models": results}, indent=2))
    chart(results)
    print(f"\nfigures: {OUT_JSON.relative_to(ROOT)}, chart: {CHART.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
