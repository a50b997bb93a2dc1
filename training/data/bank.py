"""The glyph bank: every (font, character) of the split rendered once, normalised, as uint8.

``build`` renders the catalogue's available fonts over the split's characters (a few minutes on
two cores) and caches the result under .cache/; ``GlyphBank`` holds it in memory for training
and evaluation. A missing glyph (the font lacks the character) is marked in ``have``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app import glyphs as appglyphs
from training.data import chars as charsets
from training.data import fonts as fontlib
from training.data import structure

CACHE = Path(__file__).resolve().parents[2] / ".cache" / "glyphs"


@dataclass
class GlyphBank:
    fonts: list[str]  # names, catalogue order
    sides: list[str]  # "train" / "heldout" per font
    groups: list[str]
    chars: list[str]  # train characters first, then held-out ones
    n_train_chars: int
    glyphs: np.ndarray  # [F, C, H, W] uint8, 255 = full ink
    have: np.ndarray  # [F, C] bool
    content: np.ndarray  # [C, N, H, W] uint8: the N content fonts' glyphs (fontlib.CONTENTS)
    struct: np.ndarray  # [C, S] float32 structural codes

    @property
    def size(self) -> int:
        return int(self.glyphs.shape[-1])

    def font_index(self, side: str) -> list[int]:
        return [i for i, s in enumerate(self.sides) if s == side]

    @property
    def train_chars(self) -> np.ndarray:
        return np.arange(self.n_train_chars)

    @property
    def heldout_chars(self) -> np.ndarray:
        return np.arange(self.n_train_chars, len(self.chars))


def _render(args: tuple[str, list[str], int, float]) -> tuple[np.ndarray, np.ndarray]:
    name, chars, size, em_ratio = args
    font = fontlib.Font(fontlib.by_name(name), em=2 * size)
    out = np.zeros((len(chars), size, size), np.uint8)
    have = np.zeros(len(chars), bool)
    for i, ch in enumerate(chars):
        glyph = font.render(ch, size, em_ratio)
        if glyph is not None:
            out[i] = np.floor(glyph * 255 + 0.5).astype(np.uint8)
            have[i] = True
    return out, have


def render_many(
    names: list[str], chars: list[str], size: int, workers: int = 2, em_ratio: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    # the frame goes with each job: a worker process need not share this one's glyphs.EM_RATIO
    ratio = appglyphs.EM_RATIO if em_ratio is None else em_ratio
    jobs = [(n, chars, size, ratio) for n in names]
    if workers <= 1:
        results = [_render(j) for j in jobs]
    else:
        # spawn: the same on every Python (3.14 no longer forks by default), and no fork of a
        # process whose torch threads are running
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_render, jobs))
    return np.stack([r[0] for r in results]), np.stack([r[1] for r in results])


def render_content(
    chars: list[str], size: int, workers: int = 2, em_ratio: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """[C, N, H, W] uint8: each character in the N content fonts, and [C] whether the primary
    draws it. Where a secondary font lacks a character the primary's glyph stands in (the
    primary lacking it leaves zeros)."""
    glyphs, have = render_many(list(fontlib.CONTENTS), chars, size, workers, em_ratio)
    for n in range(1, len(glyphs)):
        glyphs[n, ~have[n]] = glyphs[0, ~have[n]]
    return np.ascontiguousarray(glyphs.transpose(1, 0, 2, 3)), have[0]


def build(
    size: int,
    n_train_chars: int,
    n_heldout_chars: int,
    seed: int,
    vocab: list[str],
    font_names: list[str] | None = None,
    workers: int = 2,
    em_ratio: float | None = None,  # the frame; glyphs.EM_RATIO by default
) -> GlyphBank:
    specs = [s for s in fontlib.available() if font_names is None or s.name in font_names]
    heldout_fonts = [fontlib.open_font(s.name) for s in specs if s.side == "heldout"]
    level1 = charsets.gb2312((1,))
    eligible = {c for c in level1 if all(f.has(c) for f in heldout_fonts)}
    train, heldout = charsets.split(n_train_chars, n_heldout_chars, seed, eligible)
    chars = train + heldout
    key = hashlib.sha256(
        json.dumps(
            [size, [s.name for s in specs], chars, fontlib.render_key(em_ratio), fontlib.CONTENTS]
        ).encode()
    ).hexdigest()[:16]
    path = CACHE / f"bank-{size}-{key}.npz"
    if path.exists():
        data = np.load(path)
        glyphs, have, content = data["glyphs"], data["have"], data["content"]
    else:
        glyphs, have = render_many([s.name for s in specs], chars, size, workers, em_ratio)
        content, _ = render_content(chars, size, workers, em_ratio)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(path, glyphs=glyphs, have=have, content=content)
    return GlyphBank(
        fonts=[s.name for s in specs],
        sides=[s.side for s in specs],
        groups=[s.group for s in specs],
        chars=chars,
        n_train_chars=len(train),
        glyphs=glyphs,
        have=have,
        content=content,
        struct=structure.codes(chars, vocab),
    )


def shipped(workers: int = 2, em_ratio: float | None = None) -> GlyphBank:
    """The bank of ``make train-style``'s default split (64 px, 2,000 training and 400
    held-out characters, seed 0): what the measurement tools of training.evaluate read."""
    vocab = structure.vocabulary(charsets.gb2312((1, 2)), 256)
    return build(64, 2000, 400, 0, vocab, None, workers, em_ratio)


def font_distances(
    bank: GlyphBank, fonts: np.ndarray, chars: np.ndarray, min_shared: int = 1
) -> np.ndarray:
    """[F, F] mean per-pixel L1 between ``fonts``' glyphs over the characters of ``chars`` both
    draw (inf on the diagonal and where they share fewer than ``min_shared``)."""
    g = bank.glyphs[np.ix_(fonts, chars)].astype(np.float32) / 255.0
    h = bank.have[np.ix_(fonts, chars)]
    dist = np.full((len(fonts), len(fonts)), np.inf)
    for a in range(len(fonts)):
        for b in range(a + 1, len(fonts)):
            both = h[a] & h[b]
            if both.sum() >= max(min_shared, 1):
                dist[a, b] = dist[b, a] = float(np.abs(g[a, both] - g[b, both]).mean())
    return dist


def near_duplicates(
    bank: GlyphBank, threshold: float = 0.03, n: int = 300
) -> list[tuple[str, str, float]]:
    """Pairs of fonts whose mean per-pixel L1 over shared characters is below ``threshold``:
    the automatic check behind the catalogue's hand-made groups."""
    fonts = np.arange(len(bank.fonts))
    dist = font_distances(bank, fonts, np.arange(min(n, bank.n_train_chars)), min_shared=20)
    out = []
    for a in fonts:
        for b in range(a + 1, len(fonts)):
            d = dist[a, b]
            if d < threshold and bank.groups[a] != bank.groups[b]:
                out.append((bank.fonts[a], bank.fonts[b], round(d, 4)))
    return out
