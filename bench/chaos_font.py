"""`python -m bench.chaos font`: sampling latency on one worker slot while it writes a font.

A private hanmo (bench/serving.py) serves `vae-digits` and `glyph-style` from one `hanmo
worker` slot. 16 clients sample `vae-digits` (one row, synchronous) in a closed loop for
`seconds`, first with nothing else queued (the baseline), then while a font job (3,755
GB2312 characters by default, `--chars N` for the first N the model writes) runs on the same
slot. Reported: the HTTP statuses of each window (the target is no 504), sampling p50/p99
(the target: p99 with the font <= 3x the baseline's), and how far the font got."""

from __future__ import annotations

import asyncio
import base64
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from app.registry.cards import read_card
from app.services.registration import register_directory
from bench.serving import ROOT, free_port, private_hanmo, serving

SAMPLER = ROOT / "models" / "vae-digits" / "1"
STYLE = ROOT / "models" / "glyph-style" / "1"
REFS = ROOT / "docs" / "examples" / "ma-shan-zheng"
REFERENCES = {"永": "yong.png", "和": "he.png", "书": "shu.png", "法": "fa.png"}


async def sample_load(base: str, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` closed loops of one-row sample requests for `seconds`."""
    statuses: Counter[int] = Counter()
    latencies_ms: list[float] = []
    end = time.monotonic() + seconds

    async def client(http: httpx.AsyncClient, index: int) -> None:
        seed = index * 1_000_000
        while time.monotonic() < end:
            seed += 1
            start = time.perf_counter()
            try:
                response = await http.post(
                    "/v1/models/vae-digits/sample", json={"n": 1, "seed": seed}
                )
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            statuses[status] += 1
            if status == 200:
                latencies_ms.append((time.perf_counter() - start) * 1000)

    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        await asyncio.gather(*(client(http, i) for i in range(clients)))
    ordered = sorted(latencies_ms) or [float("nan")]
    return {
        "requests": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
    }


def start_font(http: httpx.Client, chars: int | None) -> str:
    refs = [
        {"image": base64.b64encode((REFS / name).read_bytes()).decode(), "char": char}
        for char, name in REFERENCES.items()
    ]
    style = http.post("/v1/styles", json={"model": "glyph-style", "references": refs})
    style.raise_for_status()
    body: dict[str, Any] = {"family": "Chaos"}
    if chars is not None:
        body["chars"] = read_card(STYLE).signature.chars[:chars]
    accepted = http.post(f"/v1/styles/{style.json()['style_id']}/font", json=body)
    accepted.raise_for_status()
    return str(accepted.json()["job_id"])


def font_state(http: httpx.Client, job_id: str) -> tuple[str, float]:
    job = http.get(f"/v1/jobs/{job_id}").json()
    return str(job["status"]), float(job.get("progress") or 0.0)


def run_font(
    seconds: float, clients: int, chars: int | None, lane: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`lane`: settings other than the defaults for the worker's long-job lane
    (long_job_chunk, long_job_share), reported with the figures."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with private_hanmo(tmp, SAMPLER) as bench:
            update = {"port": free_port(), **(lane or {})}
            settings = bench.settings.model_copy(update=update)
            register_directory(settings, STYLE, "production")
            with (
                serving(settings, tmp / "logs") as base,
                httpx.Client(base_url=base, timeout=120) as http,
            ):
                asyncio.run(sample_load(base, clients, 5))  # warm both paths
                baseline = asyncio.run(sample_load(base, clients, seconds))
                job_id = start_font(http, chars)
                while font_state(http, job_id) == ("queued", 0.0):
                    time.sleep(0.2)
                began = time.monotonic()
                before = font_state(http, job_id)
                with_font = asyncio.run(sample_load(base, clients, seconds))
                after = font_state(http, job_id)
                window_s = time.monotonic() - began
                readyz = http.get("/readyz").json()["checks"].get("interactive")
    ratio = with_font["p99_ms"] / baseline["p99_ms"]
    return {
        "clients": clients,
        "seconds": seconds,
        "font_chars": chars or 3755,
        "lane": {k: getattr(settings, k) for k in ("long_job_chunk", "long_job_share")},
        "baseline": baseline,
        "with_font": with_font,
        "p99_ratio": round(ratio, 2),
        "font_progress": {"start": before[1], "end": after[1], "status_at_end": after[0]},
        "font_glyphs_per_s": round((after[1] - before[1]) / 0.95 * (chars or 3755) / window_s, 1),
        "readyz_interactive_during_font": readyz,
    }
