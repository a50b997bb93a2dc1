"""Time to the first glyph, streamed vs the JSON answer (issue 49, item 2).

`hanmo api` + `hanmo worker` at their defaults (embedded Redis, the shipped glyph-style
model): per round, for 16 and 256 characters, one JSON request (its first glyph comes with
its last) and one `Accept: text/event-stream` request (the time to its first `glyph` event
and to its `done`), alternated so that a neighbour's load falls on both. Medians over
ROUNDS rounds.

Run: `.venv/bin/python -m bench.style_stream`."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import httpx

from app.registry.cards import read_card
from bench.serving import free_port, private_hanmo, serving
from bench.style import MODEL, body

URL = "/v1/models/glyph-style/style-transfer"
ROUNDS = 5
SIZES = (16, 256)


def json_s(client: httpx.Client, text: str) -> float:
    start = time.perf_counter()
    client.post(URL, json=body(text)).raise_for_status()
    return time.perf_counter() - start


def stream_s(client: httpx.Client, text: str) -> tuple[float, float]:
    """(seconds to the first glyph event, seconds to the done event)."""
    start, first = time.perf_counter(), 0.0
    headers = {"Accept": "text/event-stream"}
    with client.stream("POST", URL, json=body(text), headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line == "event: glyph" and not first:
                first = time.perf_counter() - start
            if line in ("event: done", "event: failed"):
                assert line == "event: done", "the stream failed"
                return first, time.perf_counter() - start
    raise AssertionError("the stream ended without done")


def main() -> None:
    chars = read_card(MODEL).signature.as_dict()["chars"]
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, private_hanmo(Path(tmp), MODEL) as bench:
        settings = bench.settings.model_copy(update={"port": free_port()})
        with (
            serving(settings, Path(tmp) / "logs") as url,
            httpx.Client(base_url=url, timeout=120) as client,
        ):
            json_s(client, chars[:16])  # warm-up
            for round_ in range(ROUNDS):
                for n in SIZES:
                    text = chars[100 + round_ * 256 :][:n]
                    figures.setdefault(f"json {n}", []).append(json_s(client, text))
                    first, done = stream_s(client, text)
                    figures.setdefault(f"stream first {n}", []).append(first)
                    figures.setdefault(f"stream done {n}", []).append(done)
    print(f"glyph-style, 4 references, PNG 128 px; medians of {ROUNDS} alternated rounds (s):")
    for n in SIZES:
        print(
            f"  {n:3d} characters: JSON answer {statistics.median(figures[f'json {n}']):.2f}, "
            f"stream first glyph {statistics.median(figures[f'stream first {n}']):.2f}, "
            f"stream done {statistics.median(figures[f'stream done {n}']):.2f}"
        )
    for name, values in figures.items():
        print(f"  {name}: {' '.join(f'{v:.2f}' for v in values)}")


if __name__ == "__main__":
    main()
