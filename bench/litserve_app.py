"""The peer: LitServe serving the same model directory as hanmo, for bench/peer.py. Runs in its
own venv (.venv-peer: litserve, onnxruntime, numpy, pillow) with the repository and
clients/python (the wire schemas hanmo's api modules import) on PYTHONPATH, so it runs the
graphs through hanmo's own session wrapper (same ONNX Runtime options), draws noise with
hanmo's counter-based generator, summarises draws and draws glyphs with hanmo's own NumPy
functions: its answers are checked equal to hanmo's before any timing.

    python bench/litserve_app.py MODEL_DIR PORT MAX_BATCH BATCH_TIMEOUT_S THREADS

The card's kind picks the API, each taking hanmo's request body for the same call:

* sampler: `{"n": 1, "seed": S, "labels": L?, "temperature": T?}` → `{"samples": [x]}`
  (JSON floats, like hanmo's `format=array`);
* predictive (regression): `{"inputs": [[...], ...], "interval": p}` → `{"predictions": [...]}`
  with hanmo's per-row fields (mean, std, epistemic/aleatoric std, intervals, MC error);
* style_transfer: `{"references": [{"image": b64, "char": c}, ...], "text": "..."}` →
  `{"glyphs": [{"char", "png"}...], "confidence"}` (128 px PNGs, as hanmo's default).

Every API batches across requests when MAX_BATCH > 1: sampler and predictive rows are stacked
into one graph call; style transfer runs one encoder call per group of requests with the same
number of references and one generator call over every request's characters.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import litserve as ls
import numpy as np

from app import glyphs
from app.kinds.predictive.response import regression_rows
from app.kinds.style_transfer.graph import Atlas, StyleTransferKind
from app.kinds.style_transfer.response import glyph_png
from app.noise import standard_normal_rows
from app.runtime.sessions import OnnxGraph

GLYPH_PX = 128


class Peer(ls.LitAPI):
    """LitServe's contract, with batching made uniform: `run` always gets a list. Each
    `decode_request` takes `request: dict`, plainly: LitServe builds its endpoint from that
    annotation, and `dict[str, Any]` made it a required query parameter."""

    def __init__(self, directory: Path, threads: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directory = directory
        self.threads = threads
        self.card = json.loads((directory / "card.json").read_text())
        self.signature: dict[str, Any] = self.card["signature"]

    def graph(self, role: str) -> OnnxGraph:
        return OnnxGraph(self.directory / self.card["graphs"][role]["file"], "cpu", self.threads)

    def batch(self, inputs: list[Any]) -> list[Any]:
        return list(inputs)

    def predict(self, x: Any) -> Any:
        single = not isinstance(x, list)  # max_batch_size=1: LitServe passes the item itself
        outputs = self.run([x] if single else x)
        return outputs[0] if single else outputs

    def unbatch(self, outputs: list[Any]) -> list[Any]:
        return outputs

    def run(self, items: list[Any]) -> list[Any]:
        raise NotImplementedError


class Sampler(Peer):
    def setup(self, device: str) -> None:
        self.sample = self.graph("sample")

    def decode_request(self, request: dict) -> dict[str, Any]:  # type: ignore[type-arg]
        z = standard_normal_rows(int(request["seed"]), 1, int(self.signature["z_dim"]))[0]
        temperature = float(request.get("temperature", 1.0))
        if temperature != 1.0:
            z = z * np.float32(temperature)
        return {"z": z, "label": request.get("labels")}

    def run(self, items: list[dict[str, Any]]) -> list[np.ndarray]:
        feeds = {"z": np.stack([item["z"] for item in items])}
        if self.signature.get("num_labels"):
            feeds["label"] = np.array([int(item["label"]) for item in items], np.int64)
        return list(self.sample.run(feeds)["x"])

    def encode_response(self, x: np.ndarray) -> dict[str, Any]:
        return {"samples": [x.tolist()]}


class Predictive(Peer):
    def setup(self, device: str) -> None:
        if self.signature["task"] != "regression":
            raise ValueError("the peer serves regression models")
        self.model = self.graph("predict")

    def decode_request(self, request: dict) -> dict[str, Any]:  # type: ignore[type-arg]
        interval = request.get("interval", 0.9)
        levels = sorted(set(interval if isinstance(interval, list) else [interval]))
        return {"x": np.asarray(request["inputs"], np.float32), "levels": levels}

    def run(self, items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        out = self.model.run({"x": np.concatenate([item["x"] for item in items])})
        means, variances = (np.swapaxes(out[name], 0, 1) for name in ("mean", "var"))  # [N, S, K]
        answers, start = [], 0
        for item in items:
            rows = slice(start, start + len(item["x"]))
            answers.append(regression_rows(means[rows], variances[rows], item["levels"]))
            start = rows.stop
        return answers

    def encode_response(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"predictions": rows}


class Style(Peer):
    def setup(self, device: str) -> None:
        self.kind = StyleTransferKind()
        self.graphs = {
            "encoder": self.graph("encoder"),
            "generator": self.graph("generator"),
            "atlas": Atlas(self.directory / "atlas.npz"),
        }
        self.size = int(self.signature["size"])

    def decode_request(self, request: dict) -> dict[str, Any]:  # type: ignore[type-arg]
        refs = np.stack(
            [
                glyphs.normalize_bytes(base64.b64decode(ref["image"]), self.size)
                for ref in request["references"]
            ]
        ).astype(np.float32)
        chars = [ord(ref["char"]) for ref in request["references"]]
        text = list(dict.fromkeys(ch for ch in request["text"] if not ch.isspace()))
        return {"refs": refs, "chars": chars, "text": text}

    def run(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        styles: list[Any] = [None] * len(items)
        confidences: list[float] = [0.0] * len(items)
        for k in {len(item["chars"]) for item in items}:  # one encoder call per reference count
            group = [i for i, item in enumerate(items) if len(item["chars"]) == k]
            encoded = self.kind.run(
                self.signature,
                self.graphs,
                {
                    "refs": np.stack([items[i]["refs"] for i in group]),
                    "ref_codepoint": np.array([items[i]["chars"] for i in group], np.int64),
                },
            )
            for row, i in enumerate(group):
                styles[i], confidences[i] = encoded["style"][row], float(encoded["confidence"][row])
        codepoints = np.array([ord(ch) for item in items for ch in item["text"]], np.int64)
        style_rows = np.concatenate(
            [np.repeat(styles[i][None], len(item["text"]), axis=0) for i, item in enumerate(items)]
        )
        ink = self.kind.run(
            self.signature, self.graphs, {"codepoint": codepoints, "style": style_rows}
        )["glyph"]
        answers, start = [], 0
        for i, item in enumerate(items):
            written = [
                {"char": ch, "png": png_of(ink[start + j])} for j, ch in enumerate(item["text"])
            ]
            answers.append({"glyphs": written, "confidence": round(confidences[i], 4)})
            start += len(item["text"])
        return answers

    def encode_response(self, answer: dict[str, Any]) -> dict[str, Any]:
        return answer


def png_of(ink: np.ndarray) -> str:
    return base64.b64encode(glyph_png(ink, GLYPH_PX)).decode()


KINDS: dict[str, type[Peer]] = {
    "sampler": Sampler,
    "predictive": Predictive,
    "style_transfer": Style,
}


if __name__ == "__main__":
    directory, port, max_batch, timeout, threads = sys.argv[1:6]
    card = json.loads((Path(directory) / "card.json").read_text())
    api = KINDS[card["kind"]](
        Path(directory),
        int(threads),
        max_batch_size=int(max_batch),
        batch_timeout=float(timeout),
    )
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(port=int(port), log_level="warning", generate_client_file=False)
