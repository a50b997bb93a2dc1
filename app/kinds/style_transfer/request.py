"""The request side of the `style_transfer` kind: reference images become normalised glyphs
and an encode job's inputs; text becomes a generate job's rows. Pure: no web framework here."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import numpy as np
from hanmo_client.schemas import Reference

from app import glyphs
from app.charsets import gb2312
from app.errors import InvalidInput
from app.kinds.spec import Inputs, JobMeta, Served


def signature(served: Served) -> dict[str, Any]:
    sig: dict[str, Any] = served.card.get("signature", {})
    return sig


def charset(served: Served) -> frozenset[str]:
    return _charset(served.sha256, signature(served).get("chars", ""))


_CHARSETS: dict[str, frozenset[str]] = {}


def _charset(key: str, chars: str) -> frozenset[str]:
    hit = _CHARSETS.get(key)
    if hit is None:
        hit = _CHARSETS[key] = frozenset(chars)
    return hit


def decode_references(
    references: Sequence[Reference | tuple[bytes, str]], served: Served
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


def frame(served: Served) -> tuple[int, float]:
    """The glyph size and em ratio the version was trained in (its card's; the shared
    ``EM_RATIO`` when the card names none): references are fitted to it."""
    sig = signature(served)
    return int(sig["size"]), float(sig.get("em_ratio", glyphs.EM_RATIO))


def refit(refs: np.ndarray, em_ratio: float, served: Served) -> np.ndarray:
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


def plan_text(text: str, served: Served) -> tuple[list[str], list[str]]:
    """The distinct characters to write (in order of first use) and those the model cannot
    write. Whitespace is layout, neither."""
    supported = charset(served)
    distinct = dict.fromkeys(ch for ch in text if not ch.isspace())  # in order of first use
    write = [ch for ch in distinct if ch in supported]
    unsupported = [ch for ch in distinct if ch not in supported]
    return write, unsupported


def generate_inputs(chars: list[str], style: np.ndarray) -> Inputs:
    return {
        "codepoint": np.array([ord(c) for c in chars], np.int64),
        "style": np.repeat(style.reshape(1, -1).astype(np.float32), len(chars), axis=0),
    }


def default_font_chars(served: Served) -> list[str]:
    """GB2312 level 1 (3,755 characters), as far as the model covers it."""
    supported = charset(served)
    return [ch for ch in gb2312((1,)) if ch in supported]


def job_meta(served: Served, op: str, request: Any, **fields: Any) -> JobMeta:
    """A style job's meta: one job per request step (encode, generate, font)."""
    return JobMeta.of(served, op, request, **{"n": fields.pop("n", 1), **fields})
