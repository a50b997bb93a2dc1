"""Style transfer: /style-transfer, saved styles under /v1/styles and their fonts."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hanmo_client.schemas.common import NAME_PATTERN, InferenceOptions, Provenance, StrictInt

MAX_REFERENCES = 16
MAX_TEXT = 256
MAX_IMAGE_B64 = 4 * 1024 * 1024  # characters of base64 per reference image
STYLE_ID_PATTERN = r"^st_[0-9a-f]{24}$"


class Reference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1, max_length=MAX_IMAGE_B64, description="base64 PNG/JPEG/WebP")
    char: str = Field(min_length=1, max_length=1, description="the character the image shows")

    @classmethod
    def from_file(cls, path: Path, char: str) -> Reference:
        """A reference glyph from an image file and the character it shows."""
        return cls(image=base64.b64encode(path.read_bytes()).decode(), char=char)


class StyleSource(BaseModel):
    """Where a style comes from: 1–16 reference glyphs, or a saved style's id."""

    references: list[Reference] | None = Field(
        default=None, min_length=1, max_length=MAX_REFERENCES, description="1–16 glyph images"
    )
    style_id: str | None = Field(default=None, pattern=STYLE_ID_PATTERN)


class StyleTransferRequest(InferenceOptions, StyleSource):
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="the characters to write")
    formats: list[Literal["png", "svg"]] = Field(default=["png"], min_length=1, max_length=2)
    size: StrictInt = Field(default=128, ge=16, le=512, description="glyph PNG/SVG size in px")
    sheet: bool = Field(default=False, description="also return the whole text as one PNG")
    on_stale: Literal["recompute", "fail"] = Field(
        default="recompute",
        description="a saved style made by another version: recompute it from its stored "
        "references, or answer 409",
    )


class Glyph(BaseModel):
    char: str
    confidence: float = Field(
        description="the style's confidence (how well the references pin the style down, 0–1), "
        "the same for every glyph: the generator gives no per-glyph score"
    )
    png: str | None = Field(default=None, description="base64 PNG (`formats` has png)")
    svg: str | None = Field(default=None, description="SVG outline (`formats` has svg)")


class StyleUsed(BaseModel):
    """The style a request was written in: its references, or a saved style."""

    style_id: str | None = Field(description="the saved style, or null for references")
    references: int | None = Field(default=None, description="references given with the request")
    chars: str | None = Field(default=None, description="the references' characters")
    version: int | None = Field(default=None, description="the version the saved style is of")
    recomputed: bool | None = Field(
        default=None, description="the saved style was recomputed for this version"
    )


class StyleTransferResponse(Provenance):
    text: str
    glyphs: list[Glyph] = Field(description="one per distinct character written, in order")
    unsupported: list[str] = Field(description="characters the model cannot write")
    style: StyleUsed
    confidence: float = Field(description="how well the references pin the style down, 0–1")
    size: int
    sheet: str | None = Field(default=None, description="the whole text as one base64 PNG")


class StyleCreate(InferenceOptions):
    model: str = Field(pattern=NAME_PATTERN, description="a style_transfer model")
    references: list[Reference] | None = Field(
        default=None, min_length=1, max_length=MAX_REFERENCES, description="or multipart images"
    )
    ttl_s: StrictInt | None = Field(
        default=None,
        ge=60,
        le=366 * 86_400,
        description="expiry (default 30 days); DELETE ends it sooner",
    )


class StyleRead(BaseModel):
    """A saved style: tied to the model version that computed it."""

    style_id: str
    model: str
    version: int
    sha256: str
    references: int
    chars: str
    confidence: float
    created_ms: int
    expires_ms: int
    href: str


class StyleCode(BaseModel):
    """The result of a style-transfer request's first job (the style encoder's output)."""

    job_id: str
    model: str
    version: int
    style: list[float]
    confidence: float


class FontRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chars: str | None = Field(
        default=None, min_length=1, max_length=8000, description="default: GB2312 level 1"
    )
    family: str = Field(default="hanmo", pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]{0,47}$")
    timeout_ms: StrictInt | None = Field(default=None, ge=1, le=3_600_000)


class FontResult(BaseModel):
    """A finished font job's JSON result; the font itself comes with `Accept: font/ttf`."""

    job_id: str
    model: str
    version: int
    style_id: str
    family: str
    chars: int
    bytes: int
    download: str
