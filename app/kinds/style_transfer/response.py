"""The response side of the `style_transfer` kind: generated glyphs become PNGs, SVGs and an
optional sheet; a font job becomes its download. Pure: no web framework here."""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

from app import rendering
from app.images import png_bytes, to_uint8
from app.kinds.spec import Finished


def glyph_png(ink: np.ndarray, size: int) -> bytes:
    return png_bytes(to_uint8(1.0 - rendering.render(ink, size)))


def sheet_png(text: str, by_char: dict[str, np.ndarray], size: int, columns: int = 16) -> bytes:
    """The text laid out in lines (newlines break, long lines wrap at ``columns``); characters
    the model cannot write are left blank."""
    lines: list[list[str]] = []
    for raw in text.split("\n") or [""]:
        row: list[str] = []
        for ch in raw:
            row.append(ch)
            if len(row) == columns:
                lines.append(row)
                row = []
        lines.append(row)
    cols = max(1, max(len(r) for r in lines))
    pad = max(2, size // 16)
    # Drawn in 8-bit grey from the start, each distinct glyph once and copied from its first
    # cell after: a float sheet and its temporaries took ~1.2 GB for 256 characters at 512 px
    # (bench.redteam heavy_sheet), and a copy of every distinct glyph beside the sheet another
    # 64 MB (four such renders at once in bench.overload's flood).
    sheet = np.full((len(lines) * (size + pad) + pad, cols * (size + pad) + pad), 255, np.uint8)
    first: dict[str, tuple[int, int]] = {}  # char -> its first cell's top left
    for r, row in enumerate(lines):
        for c, ch in enumerate(row):
            ink = by_char.get(ch)
            if ink is None:
                continue
            top, left = pad + r * (size + pad), pad + c * (size + pad)
            cell = sheet[top : top + size, left : left + size]
            if ch in first:
                was_top, was_left = first[ch]
                cell[...] = sheet[was_top : was_top + size, was_left : was_left + size]
            else:
                first[ch] = (top, left)
                cell[...] = to_uint8(1.0 - rendering.render(ink, size))
    return png_bytes(sheet)


def render(
    meta: dict[str, Any], job_id: str, outcome: Finished, accept: str | None
) -> dict[str, Any] | tuple[bytes, str]:
    assert outcome.tensors is not None
    if meta.get("op") == "font":
        return _render_font(meta, job_id, outcome, accept)
    if meta.get("op") == "encode":  # a style-transfer request's first job
        return {
            "job_id": job_id,
            "model": meta["model"],
            "version": meta["version"],
            "style": outcome.tensors["style"][0].tolist(),
            "confidence": confidence_of(float(outcome.tensors["confidence"][0])),
        }
    glyph = outcome.tensors["glyph"]
    chars: list[str] = meta["chars"]
    by_char = {ch: glyph[i] for i, ch in enumerate(chars)}
    size = int(meta["size"])
    if wants_sheet(meta, accept):
        return sheet_png(meta["text"], by_char, size), "image/png"
    formats = meta["formats"]
    out_glyphs = []
    for ch in chars:
        item: dict[str, Any] = {"char": ch, "confidence": meta["confidence"]}
        if "png" in formats:
            item["png"] = base64.b64encode(glyph_png(by_char[ch], size)).decode()
        if "svg" in formats:
            item["svg"] = rendering.svg(by_char[ch], size)
        out_glyphs.append(item)
    body: dict[str, Any] = {
        "job_id": job_id,
        "model": meta["model"],
        "version": meta["version"],
        "alias": meta["alias"],
        "sha256": meta["sha256"],
        "text": meta["text"],
        "glyphs": out_glyphs,
        "unsupported": meta["unsupported"],
        "style": meta["style"],
        "confidence": meta["confidence"],
        "size": size,
        "runtime": outcome.info.get("runtime", ""),
        "provider": outcome.info.get("provider", ""),
    }
    if meta.get("sheet"):
        body["sheet"] = base64.b64encode(sheet_png(meta["text"], by_char, size)).decode()
    return body


def wants_sheet(meta: dict[str, Any], accept: str | None) -> bool:
    """Whether a finished generate job is answered with its sheet as the PNG body."""
    png = accept is not None and "image/png" in accept
    return png and meta.get("op") == "generate" and bool(meta.get("sheet_ok", True))


GLYPH_PX = 64 * 64  # a render's cost is counted in 64-px glyphs, the unit of INLINE_ROWS


def render_rows(meta: dict[str, Any], accept: str | None) -> int:
    """What rendering a finished job costs, in 64-px glyphs: each distinct glyph (PNG, SVG)
    and each character of the text on a sheet, scaled by area. `n` alone undercounts a sheet:
    256 x 永 is one glyph to generate and 256 cells to draw."""
    if meta.get("op") != "generate":
        return 1  # an encode job's code, a font's stored bytes
    cells = int(meta.get("n", 1))
    if meta.get("sheet") or wants_sheet(meta, accept):
        cells += len(meta["text"])
    return cells * int(meta["size"]) ** 2 // GLYPH_PX


def _render_font(
    meta: dict[str, Any], job_id: str, outcome: Finished, accept: str | None
) -> dict[str, Any] | tuple[bytes, str]:
    assert outcome.tensors is not None
    size = int(outcome.tensors["ttf_size"][0])
    if accept and ("font/ttf" in accept or "application/octet-stream" in accept):
        return outcome.tensors["ttf"][0, :size].tobytes(), "font/ttf"
    return {
        "job_id": job_id,
        "model": meta["model"],
        "version": meta["version"],
        "style_id": meta["style_id"],
        "family": meta["family"],
        "chars": meta["n_chars"],
        "bytes": size,
        "download": f"GET /v1/jobs/{job_id} with Accept: font/ttf",
    }


def confidence_of(value: float) -> float:
    return round(float(value), 4) if math.isfinite(value) else 0.0
