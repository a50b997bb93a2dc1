"""What the browser tests share: the models the live stack serves, the demo style's
references, and how to read an <img>'s pixels as the page drew them."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image

from tests.helpers import ROOT

MODELS = (
    "glyph-style",
    "cvae-digits",
    "vae-digits",
    "concrete-sghmc",
    "digits-sghmc",
    "bae-digits",
)
UNSERVED = "tiny-sampler"  # registered with no alias: no request that names no version reaches it
DEMO = ROOT / "app" / "web" / "demo" / "ma-shan-zheng"
# pixels of an <img> as the page drew them: RGBA, row-major
PIXELS = """(img) => {
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  return Array.from(ctx.getImageData(0, 0, c.width, c.height).data);
}"""


def rgba(png: bytes) -> list[int]:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).ravel().tolist()


def demo_references() -> list[dict[str, str]]:
    return [
        {"image": base64.b64encode((DEMO / f"{i}.png").read_bytes()).decode(), "char": ch}
        for i, ch in enumerate("永和书法")
    ]


def write(page: Any, base: str, text: str) -> None:
    page.goto(f"{base}/")
    page.locator("#refs li img").nth(3).wait_for()
    page.fill("#write-text", text)
    assert page.locator("#write-downloads").is_hidden()  # [hidden] wins over the row's display
    page.click("#write-go")
    page.locator("#write-downloads:not([hidden])").wait_for()
