"""python -m training.data.demo_styles [OUT]: the web page's demo styles. Four reference glyphs
(永和书法) from each held-out font, the fonts the style model never trained on, drawn black on
white and cropped to the ink with a margin, as a user's scan would be; plus `styles.json`,
the list the page reads. Needs the fonts of `make fonts`; the output is committed under
`app/web/demo` so serving needs no font."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from training.data.fonts import open_font

CHARS = "永和书法"
STYLES = {  # catalogue name -> label on the page
    "ma-shan-zheng": "Ma Shan Zheng (brush)",
    "zhi-mang-xing": "Zhi Mang Xing (running hand)",
    "lxgw-wenkai": "LXGW WenKai (kai)",
    "smiley-sans": "Smiley Sans (oblique sans)",
    "zcool-qingke-huangyou": "ZCOOL QingKe HuangYou (display)",
}
MARGIN = 0.12  # of the ink box's longer side, on every edge


def scan(grey: np.ndarray) -> Image.Image:
    """A raw rendering (1 = paper) cropped to its ink box plus a margin, as 8-bit greyscale."""
    rows, cols = np.nonzero(grey < 0.5)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    pad = round(MARGIN * max(bottom - top, right - left))
    crop = grey[max(top - pad, 0) : bottom + pad, max(left - pad, 0) : right + pad]
    return Image.fromarray(np.round(crop * 255).astype(np.uint8), "L")


def write(out: Path) -> list[dict[str, object]]:
    styles = []
    for name, label in STYLES.items():
        font = open_font(name)
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for i, ch in enumerate(CHARS):
            path = folder / f"{i}.png"
            scan(font.raw(ch)).save(path, optimize=True)
            files.append(f"{name}/{path.name}")
        styles.append({"id": name, "label": label, "chars": CHARS, "files": files})
    (out / "styles.json").write_text(json.dumps({"styles": styles}, ensure_ascii=False, indent=2))
    return styles


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "app/web/demo")
    for style in write(target):
        print(f"{style['id']}: {', '.join(map(str, style['files']))}")
