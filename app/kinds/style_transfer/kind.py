"""The `style_transfer` kind's record in the catalog."""

from __future__ import annotations

from hanmo_client.schemas import FontResult, StyleCode, StyleTransferResponse

from app.kinds.spec import JobMeta, KindSpec, RoleSpec, TensorSpec
from app.kinds.style_transfer.graph import StyleTransferKind
from app.kinds.style_transfer.response import render, render_rows
from app.kinds.style_transfer.signature import StyleTransferSignature


def glyphs_of(job: JobMeta) -> float:
    """A style job's cost in glyph generations: an encode's K references are encoded and
    redrawn (about 2K), a generate job's glyphs 1 each; a font job is long-lane work, priced 0
    here so that it neither holds interactive requests out nor skews the measured rate."""
    if job.op == "encode":
        return 2.0 * float(job.fields.get("references", 1))
    if job.op == "font":
        return 0.0
    return float(job.rows)


SPEC = KindSpec(
    name="style_transfer",
    noun="style-transfer model",
    description=(
        "A few-shot style model: an encoder turns K reference glyphs into a style code, a "
        "generator writes any character of its charset in that style; the worker also builds "
        "TrueType fonts from it."
    ),
    signature=StyleTransferSignature,
    graph=StyleTransferKind(),
    roles=(
        RoleSpec(
            "encoder",
            inputs=(
                TensorSpec("refs", "float32", ("B", "K", "size", "size"), "reference glyphs"),
                TensorSpec(
                    "ref_content",
                    "float32",
                    ("B", "K", "(F)", "size", "size"),
                    "their content glyphs from the atlas (F content fonts, if the atlas has that "
                    "axis)",
                ),
            ),
            outputs=(TensorSpec("style", "float32", ("B", "style_dim"), "the style code"),),
        ),
        RoleSpec(
            "generator",
            inputs=(
                TensorSpec("content", "float32", ("T", "(F)", "size", "size"), "content glyphs"),
                TensorSpec("struct", "float32", ("T", "struct_dim"), "structural codes"),
                TensorSpec("style", "float32", ("T", "style_dim"), "each row's style code"),
            ),
            outputs=(TensorSpec("glyph", "float32", ("T", "size", "size"), "ink in [0, 1]"),),
        ),
    ),
    render=render,
    answers={
        "generate": StyleTransferResponse.model_validate,
        "encode": StyleCode.model_validate,
        "font": FontResult.model_validate,
    },
    routes=(
        "POST /v1/models/{name}/style-transfer",
        "POST /v1/styles",
        "POST /v1/styles/{style_id}/font",
    ),
    card_fields_read={
        "signature": "size, style_dim, struct_dim, chars, em_ratio, max_references, max_batch_rows",
        "files": "atlas.npz: every character's content glyphs and structural code",
        "metrics": "shown on the page's Models tab",
    },
    render_rows=render_rows,
    # a 256-character sheet at 512 px (32,768 rows) took 4.6 s of one idle core of the 2-core
    # dev machine (AMD EPYC, 2026-12-08), 0.14 ms a row; twice that, for a process that has
    # not measured yet is as likely to be busy: with 0 or 0.15 ms, sheets in a flood were
    # still answered 2-6 s past their deadline (bench/README.md)
    render_prior_s=0.3e-3,
    cost=glyphs_of,
)
