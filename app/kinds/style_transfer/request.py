"""The api half of the `style_transfer` kind: reference images become normalised glyphs and
an encode job's inputs; text becomes a generate job's rows; finished jobs become glyph PNGs,
SVGs and an optional sheet. Pure: no web framework here."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from hanmo_client.schemas import Reference

from app import glyphs
from app.charsets import gb2312
from app.errors import InvalidInput
from app.images import png_bytes, to_uint8

if TYPE_CHECKING:  # annotations only: bench/litserve_app.py imports this without the registry
    from app.queue.results import Outcome
    from app.registry.service import ServedVersion

Inputs = dict[str, np.ndarray]


def signature(served: ServedVersion) -> dict[str, Any]:
    sig: dict[str, Any] = served.card.get("signature", {})
    return sig


def charset(served: ServedVersion) -> frozenset[str]:
    return _charset(served.sha256, signature(served).get("chars", ""))


_CHARSETS: dict[str, frozenset[str]] = {}


def _charset(key: str, chars: str) -> frozenset[str]:
    hit = _CHARSETS.get(key)
    if hit is None:
        hit = _CHARSETS[key] = frozenset(chars)
    return hit


def decode_references(
    references: Sequence[Reference | tuple[bytes, str]], served: ServedVersion
) -> tuple[np.ndarray, str]:
    """Decode, check and normalise reference images: [K, H, W] float32 glyphs and their
    characters. Every problem names the reference it is about."""
    size, em_ratio = frame(served)
    supported = charset(served)
    out = np.zeros((len(references), size, size), np.float32)
    chars = []
    for i, ref in enumerate(references):
        if isinstance(ref, Reference):
            data, char = _b64(ref.image, i), ref.char
        else:
            data, char = ref
        if not char or len(char) != 1:
            raise InvalidInput(
                f"reference {i}: give the one character the image shows",
                errors=[{"field": f"references.{i}.char"}],
            )
        if char not in supported:
            raise InvalidInput(
                f"reference {i}: {char!r} is not a character this model knows, so its content "
                "glyph cannot be paired with the image",
                errors=[{"field": f"references.{i}.char"}],
            )
        try:
            out[i] = glyphs.normalize_bytes(data, size, em_ratio)
        except glyphs.GlyphError as exc:
            raise InvalidInput(
                f"reference {i}: {exc}", errors=[{"field": f"references.{i}.image"}]
            ) from exc
        chars.append(char)
    return out, "".join(chars)


def frame(served: ServedVersion) -> tuple[int, float]:
    """The glyph size and em ratio the version was trained in (its card's; the shared
    ``EM_RATIO`` when the card names none): references are fitted to it."""
    sig = signature(served)
    return int(sig["size"]), float(sig.get("em_ratio", glyphs.EM_RATIO))


def refit(refs: np.ndarray, em_ratio: float, served: ServedVersion) -> np.ndarray:
    """Normalised references fitted at ``em_ratio`` (a saved style's) in the frame of
    ``served``; in the same frame they are returned as they are."""
    size, target = frame(served)
    if target == em_ratio:
        return refs
    return np.stack([glyphs.fit(g, size, target) for g in refs])


def _b64(text: str, i: int) -> bytes:
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(
            f"reference {i}: the image is not valid base64",
            errors=[{"field": f"references.{i}.image"}],
        ) from exc


def encode_inputs(refs: np.ndarray, chars: str) -> Inputs:
    return {
        "refs": refs[None].astype(np.float32),
        "ref_codepoint": np.array([[ord(c) for c in chars]], np.int64),
    }


def plan_text(text: str, served: ServedVersion) -> tuple[list[str], list[str]]:
    """The distinct characters to write (in order of first use) and those the model cannot
    write. Whitespace is layout, neither."""
    supported = charset(served)
    write: list[str] = []
    unsupported: list[str] = []
    for ch in text:
        if ch.isspace():
            continue
        target = write if ch in supported else unsupported
        if ch not in target:
            target.append(ch)
    return write, unsupported


def generate_inputs(chars: list[str], style: np.ndarray) -> Inputs:
    return {
        "codepoint": np.array([ord(c) for c in chars], np.int64),
        "style": np.repeat(style.reshape(1, -1).astype(np.float32), len(chars), axis=0),
    }


def default_font_chars(served: ServedVersion) -> list[str]:
    """GB2312 level 1 (3,755 characters), as far as the model covers it."""
    supported = charset(served)
    return [ch for ch in gb2312((1,)) if ch in supported]


def glyph_png(ink: np.ndarray, size: int) -> bytes:
    return png_bytes(to_uint8(1.0 - glyphs.crisp(ink, size)))


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
    sheet = np.zeros((len(lines) * (size + pad) + pad, cols * (size + pad) + pad), np.float32)
    for r, row in enumerate(lines):
        for c, ch in enumerate(row):
            ink = by_char.get(ch)
            if ink is None:
                continue
            top, left = pad + r * (size + pad), pad + c * (size + pad)
            sheet[top : top + size, left : left + size] = glyphs.crisp(ink, size)
    return png_bytes(to_uint8(1.0 - sheet))


def render(
    meta: dict[str, Any], job_id: str, outcome: Outcome, accept: str | None
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
            item["svg"] = glyphs.svg(by_char[ch], size)
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
    meta: dict[str, Any], job_id: str, outcome: Outcome, accept: str | None
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
