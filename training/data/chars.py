"""Characters: GB2312 decoded from Python's codec, ordered by frequency from jieba's dictionary
(MIT, ships in the ``jieba`` package: a character's count is the sum of the counts of the
words it appears in). The split is fixed by a seed and written into the card."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from app.charsets import gb2312

__all__ = ["by_frequency", "frequencies", "gb2312", "split"]


@functools.cache
def frequencies() -> dict[str, int]:
    import jieba

    counts: dict[str, int] = {}
    path = Path(jieba.__file__).parent / "dict.txt"
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) < 2:
                continue
            word, count = parts[0], int(parts[1])
            for ch in word:
                counts[ch] = counts.get(ch, 0) + count
    return counts


def by_frequency(chars: list[str]) -> list[str]:
    freq = frequencies()
    return sorted(chars, key=lambda c: (-freq.get(c, 0), c))


def split(
    n_train: int, n_heldout: int, seed: int, eligible_heldout: set[str]
) -> tuple[list[str], list[str]]:
    """The ``n_train`` most frequent level-1 characters train; ``n_heldout`` others, drawn with
    ``seed`` from the rest of level 1 that every evaluation font covers, are never trained on."""
    ranked = by_frequency(gb2312((1,)))
    train = ranked[:n_train]
    rest = sorted(c for c in ranked[n_train:] if c in eligible_heldout)
    rng = np.random.default_rng(seed)
    heldout = [rest[i] for i in sorted(rng.choice(len(rest), size=n_heldout, replace=False))]
    return train, heldout
