"""A style-transfer model's card signature, typed."""

from __future__ import annotations

from pydantic import Field, StrictFloat, StrictInt

from app.kinds.signature import Count, Signature


class StyleTransferSignature(Signature):
    """The `encoder` turns K reference glyphs into a style code [B, style_dim]; the
    `generator` writes characters of `chars` in that style; `atlas.npz` (a side file listed
    in card.json `files`) holds every character's content glyphs and structural code."""

    size: Count = Field(description="glyph side in pixels: glyphs are [size, size] in [0, 1]")
    style_dim: Count = Field(description="the style code's width D")
    struct_dim: Count = Field(description="the width S of each character's structural code")
    chars: str = Field(min_length=1, description="every character the model can write")
    em_ratio: StrictFloat | StrictInt | None = Field(
        default=None,
        ge=0.1,
        le=1.0,
        description="the references' ink box as a fraction of the glyph, in [0.1, 1]",
    )
    max_references: Count | None = Field(default=None, description="K at most per style")
    max_batch_rows: Count | None = Field(
        default=None, description="rows per generator call at most (slower per row above)"
    )
