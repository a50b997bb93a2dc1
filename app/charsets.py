"""Character sets, decoded from Python's own codecs (no data files)."""

from __future__ import annotations

GB2312_ROWS = {1: range(0xB0, 0xD8), 2: range(0xD8, 0xF8)}


def gb2312(levels: tuple[int, ...] = (1,)) -> list[str]:
    """GB2312 level 1 (3,755 characters, rows 0xB0–0xD7) and/or level 2 (3,008, rows
    0xD8–0xF7), in code order."""
    out = []
    for level in levels:
        for hi in GB2312_ROWS[level]:
            for lo in range(0xA1, 0xFF):
                try:
                    out.append(bytes([hi, lo]).decode("gb2312"))
                except UnicodeDecodeError:
                    continue
    return out
