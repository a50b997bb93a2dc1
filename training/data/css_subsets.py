"""Lay out a web-font package split by CSS (``@font-face`` blocks, each a ``url(...)`` woff2 and
its ``unicode-range``) the way @fontsource lays out its Chinese families: ``unicode.json``
mapping ``[i]`` to the i-th file's ranges, and the files as ``files/<family>-<i>-400-normal.woff2``.
The renderer (``training.data.fonts.Font``) then opens it as any ``npm:<family>`` entry.

The @chinese-fonts/* packages (cn-font-split's ``result.css``) and the cn-fontsource-* packages
(``font.css``) are split this way. Standard library only: ``training/data/fetch_fonts.sh`` runs
it with the system Python before the project's environment exists.

    python3 training/data/css_subsets.py CSS DEST FAMILY
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

_BLOCK = re.compile(r"@font-face\s*\{(.*?)\}", re.S)
_URL = re.compile(r"""url\(\s*['"]?([^'")]+?\.woff2)['"]?\s*\)""")
_RANGE = re.compile(r"unicode-range\s*:\s*([^;}]+)")


def subsets(css: str) -> list[tuple[str, str]]:
    """(woff2 file, unicode-range) for each @font-face block that names both."""
    out = []
    for block in _BLOCK.findall(css):
        url, ranges = _URL.search(block), _RANGE.search(block)
        if url and ranges:
            out.append((url.group(1), " ".join(ranges.group(1).split())))
    return out


def lay_out(css_path: Path, dest: Path, family: str) -> int:
    """Copy the woff2 files ``css_path`` names under ``dest`` in @fontsource's layout; returns
    how many. Refuses a CSS that names none, or a file that is not beside it."""
    found = subsets(css_path.read_text(encoding="utf-8"))
    if not found:
        raise ValueError(f"{css_path}: no @font-face block with a woff2 url and a unicode-range")
    (dest / "files").mkdir(parents=True, exist_ok=True)
    table = {}
    # normalised, not resolved: the check is on the paths the CSS names
    folder = Path(os.path.normpath(css_path.parent))
    for i, (url, ranges) in enumerate(found):
        source = Path(os.path.normpath(folder / url))
        if folder not in source.parents or not source.is_file():
            raise ValueError(f"{css_path}: {url} is not a file beside it")
        shutil.copyfile(source, dest / "files" / f"{family}-{i}-400-normal.woff2")
        table[f"[{i}]"] = ranges
    (dest / "unicode.json").write_text(json.dumps(table, indent=1) + "\n")
    return len(found)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    n = lay_out(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
    print(f"{sys.argv[3]}: {n} subsets")
