"""Style-transfer benchmark on the shipped glyph-style model.

1. The generator graph alone (ONNX Runtime, CPU, one session with the worker's thread count):
   glyphs per second at batch 1, 16, 64 and 256.
2. Served over HTTP (`hanmo api` + `hanmo worker`, default settings, embedded Redis): a
   request with 4 reference images and 4 characters to write, p50/p90 latency one at a
   time, then glyphs per second with 8 clients at once, whose generate rows the worker
   batches together.

Run: `.venv/bin/python -m bench.style` (part of `make bench`)."""

from __future__ import annotations

import base64
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from app.kinds.style_transfer.graph import Atlas
from app.registry.cards import read_card
from app.runtime.sessions import OnnxGraph
from bench.serving import ROOT, free_port, private_hanmo, serving, worker_threads

MODEL = ROOT / "models" / "glyph-style" / "1"
EXAMPLES = ROOT / "docs" / "examples" / "ma-shan-zheng"
REFS = {"永": "yong.png", "和": "he.png", "书": "shu.png", "法": "fa.png"}
SECONDS_PER_CASE = 2.0


def raw(threads: int) -> list[tuple[int, float]]:
    card = read_card(MODEL)
    graph = OnnxGraph(MODEL / "generator.onnx", "cpu", threads)
    atlas = Atlas(MODEL / "atlas.npz")
    dim = int(card.signature.as_dict()["style_dim"])
    rng = np.random.default_rng(0)
    out = []
    for batch in (1, 16, 64, 256):
        looked = atlas.run({"codepoint": atlas.codepoints[:batch]})
        feeds = {**looked, "style": rng.standard_normal((batch, dim)).astype(np.float32)}
        graph.run(feeds)
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < SECONDS_PER_CASE:
            graph.run(feeds)
            calls += 1
        out.append((batch, calls * batch / (time.perf_counter() - start)))
    return out


def body(text: str) -> dict[str, object]:
    refs = [
        {"image": base64.b64encode((EXAMPLES / f).read_bytes()).decode(), "char": c}
        for c, f in REFS.items()
    ]
    return {"references": refs, "text": text}


def http(url: str, chars: str) -> tuple[list[float], float]:
    texts = [chars[i : i + 4] for i in range(0, 4 * 64, 4)]
    with httpx.Client(base_url=url, timeout=60) as client:
        client.post("/v1/models/glyph-style/style-transfer", json=body(texts[0])).raise_for_status()
        latencies = []
        for text in texts[:20]:
            start = time.perf_counter()
            client.post("/v1/models/glyph-style/style-transfer", json=body(text)).raise_for_status()
            latencies.append((time.perf_counter() - start) * 1000)

    def one(text: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            c.post("/v1/models/glyph-style/style-transfer", json=body(text)).raise_for_status()

    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, texts))
    rate = 4 * len(texts) / (time.perf_counter() - start)
    return latencies, rate


def main() -> None:
    chars = read_card(MODEL).signature.as_dict()["chars"]
    with tempfile.TemporaryDirectory() as tmp, private_hanmo(Path(tmp), MODEL) as bench:
        threads = worker_threads(bench.settings)
        print(f"generator graph, ONNX Runtime CPU, {threads} threads:")
        for batch, rate in raw(threads):
            print(
                f"  batch {batch:4d}: {rate:8.1f} glyphs/s ({1000 / rate * batch:.1f} ms per call)"
            )
        settings = bench.settings.model_copy(update={"port": free_port()})
        with serving(settings, Path(tmp) / "logs") as url:
            latencies, rate = http(url, chars[100:])
        q = statistics.quantiles(latencies, n=10)
        print("served (4 references + 4 characters per request, JSON, PNG 128 px):")
        print(f"  one at a time: p50 {statistics.median(latencies):.0f} ms, p90 {q[8]:.0f} ms")
        print(f"  8 clients: {rate:.0f} glyphs/s")


if __name__ == "__main__":
    main()
