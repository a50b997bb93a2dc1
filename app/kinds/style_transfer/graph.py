"""The `style_transfer` kind: two graphs of the model's own design and a content atlas.

* ``encoder``: ``refs`` [B, K, H, W], ``ref_content`` [B, K, (N,) H, W] float32 → ``style`` [B, D];
* ``generator``: ``content`` [T, (N,) H, W], ``struct`` [T, S], ``style`` [T, D] → ``glyph``
  [T, H, W];
* ``atlas.npz`` (a side file): every supported character's content glyph(s) and structural
  code. ``content`` is [C, H, W] for one content font or [C, N, H, W] for N of them; the
  graphs take whichever shape their atlas holds.

Jobs carry characters as code points; the worker turns them into content glyphs. A job is one
of three shapes, told apart by its inputs (so the worker's batches never mix them):

* encode: ``refs`` [1, K, H, W], ``ref_codepoint`` [1, K] → ``style`` [1, D] and
  ``confidence`` [1] (ink IoU of the references redrawn from that style);
* generate: ``codepoint`` [T], ``style`` [T, D] → ``glyph`` [T, H, W] (rows of many requests
  batch together: each row carries its own style);
* font: ``font_codepoints`` [1, N], ``font_style`` [1, D] → a TrueType font of those characters
  (``ttf`` [1, bytes] uint8 and ``ttf_size`` [1]), built on the worker in steps of a chunk of
  glyphs each (``step_count``, ``run_step``, ``finish_steps``): the worker's long-job lane runs
  other work between steps and keeps each step's contours, so a restarted job resumes.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.errors import ContractViolation
from app.kinds import progress
from app.kinds.base import (
    CHECK_ROWS,
    CHECK_SEED,
    CheckedKind,
    Data,
    Graph,
    TensorInfo,
    Tensors,
    output_problems,
    positive,
    run_each,
)

if TYPE_CHECKING:  # the card's own module imports this package's signature
    from app.registry.cards import Card

ATLAS = "atlas.npz"
FONT_CHUNK = 16  # glyphs a font job's step generates and traces (HANMO_LONG_JOB_CHUNK)


class Atlas:
    """The content atlas as a pseudo-graph: code points in, content glyphs and codes out."""

    provider = "numpy"

    def __init__(self, path: Path) -> None:
        with np.load(path) as data:
            self.codepoints = data["codepoints"].astype(np.int64)
            self.content = data["content"]
            dim = int(data["struct_dim"])
            self.struct = np.unpackbits(data["struct"], axis=1)[:, :dim].astype(np.float32)
        self.index = {int(cp): i for i, cp in enumerate(self.codepoints)}
        fonts_axis = self.content.ndim == 4  # [C, N, H, W]: N content fonts
        self.inputs = [TensorInfo("codepoint", "int64", ("T",))]
        self.outputs = [
            TensorInfo(
                "content", "float32", ("T", "N", "H", "W") if fonts_axis else ("T", "H", "W")
            ),
            TensorInfo("struct", "float32", ("T", "S")),
        ]

    def rows(self, codepoints: np.ndarray) -> np.ndarray:
        try:
            return np.fromiter((self.index[int(c)] for c in codepoints.reshape(-1)), np.int64)
        except KeyError as exc:
            raise ContractViolation(
                f"U+{int(exc.args[0]):04X} is not in the model's atlas"
            ) from exc

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = self.rows(feeds["codepoint"])
        shape = feeds["codepoint"].shape
        content = self.content[rows].astype(np.float32) / 255.0
        return {
            "content": content.reshape(*shape, *content.shape[1:]),
            "struct": self.struct[rows].reshape(*shape, self.struct.shape[1]),
        }


class StyleTransferKind(CheckedKind):
    roles: tuple[str, ...] = ("encoder", "generator")

    def side_graphs(self, directory: Path, card: Card) -> dict[str, Graph]:
        if ATLAS not in card.files:
            raise ContractViolation(f"a style_transfer card must list {ATLAS} in files")
        return {"atlas": Atlas(directory / ATLAS)}

    def problems(
        self, signature: dict[str, Any], graphs: dict[str, Graph], data: Data = None
    ) -> list[str]:
        problems = _field_problems(signature) + _io_problems(graphs)
        atlas = graphs.get("atlas")
        if isinstance(atlas, Atlas) and not problems:
            problems += _atlas_problems(signature, atlas)
        if problems or not all(role in graphs for role in (*self.roles, "atlas")):
            return problems
        return self._run_problems(signature, graphs)

    def _run_problems(self, signature: dict[str, Any], graphs: dict[str, Graph]) -> list[str]:
        """Generate from random styles and characters, encode random references, at each batch
        size: glyphs finite [T, size, size], style finite [1, style_dim] for any K."""
        size, dim = int(signature["size"]), int(signature["style_dim"])
        generated, problems = run_each(
            "the generator", partial(self.run, signature, graphs), self.random_inputs(signature)
        )
        encoded, failed = run_each(
            "the encoder", partial(self.run, signature, graphs), self.random_refs(signature)
        )
        problems += failed
        if generated:
            runs = {rows: out["glyph"] for rows, out in generated.items()}
            problems += (
                output_problems("graphs.generator output `glyph`", runs)
                or [
                    f"graphs.generator output `glyph`: shape {glyphs.shape} on N={rows}, the card "
                    f"says [N, {size}, {size}] (signature.size)"
                    for rows, glyphs in runs.items()
                    if glyphs.shape[1:] != (size, size)
                ][:1]
            )
        for k, out in encoded.items():
            style = out["style"]
            if style.shape != (1, dim) or not np.isfinite(style).all():
                problems.append(
                    f"graphs.encoder output `style` on K={k} random references: shape "
                    f"{style.shape}, must be finite and [1, {dim}] (signature.style_dim)"
                )
        return problems

    def random_inputs(self, signature: dict[str, Any]) -> dict[int, Tensors]:
        """Seeded characters of signature.chars with standard normal style vectors."""
        rng = np.random.default_rng(CHECK_SEED)
        chars = np.array([ord(c) for c in signature["chars"]], np.int64)
        return {
            rows: {
                "codepoint": rng.choice(chars, rows),
                "style": rng.standard_normal((rows, int(signature["style_dim"]))).astype(
                    np.float32
                ),
            }
            for rows in CHECK_ROWS
        }

    def random_refs(self, signature: dict[str, Any]) -> dict[int, Tensors]:
        """K references of seeded random ink (K = each check batch size) for the encoder."""
        rng = np.random.default_rng(CHECK_SEED)
        size, chars = int(signature["size"]), [ord(c) for c in signature["chars"]]
        return {
            k: {
                "refs": (rng.random((1, k, size, size)) < 0.3).astype(np.float32),
                "ref_codepoint": rng.choice(chars, (1, k)).astype(np.int64),
            }
            for k in CHECK_ROWS
        }

    def example(self, signature: dict[str, Any], rows: int) -> Tensors:
        first = ord(signature["chars"][0])
        return {
            "codepoint": np.full(rows, first, np.int64),
            "style": np.zeros((rows, int(signature["style_dim"])), np.float32),
        }

    def encode_example(self, signature: dict[str, Any], k: int) -> Tensors:
        size = int(signature["size"])
        first = ord(signature["chars"][0])
        refs = np.zeros((1, k, size, size), np.float32)
        refs[..., size // 4 : -size // 4, size // 4 : -size // 4] = 1.0
        return {"refs": refs, "ref_codepoint": np.full((1, k), first, np.int64)}

    def run(self, signature: dict[str, Any], graphs: dict[str, Graph], inputs: Tensors) -> Tensors:
        if "refs" in inputs:
            return self._encode(graphs, inputs)
        if "font_codepoints" in inputs:
            return self._font(signature, graphs, inputs)
        return {"glyph": self._generate(graphs, inputs["codepoint"].reshape(-1), inputs["style"])}

    def _generate(
        self, graphs: dict[str, Graph], codepoints: np.ndarray, style: np.ndarray
    ) -> np.ndarray:
        looked = graphs["atlas"].run({"codepoint": codepoints})
        feeds = {
            "content": looked["content"],
            "struct": looked["struct"],
            "style": style.astype(np.float32),
        }
        return graphs["generator"].run(feeds)["glyph"].astype(np.float32, copy=False)

    def _encode(self, graphs: dict[str, Graph], inputs: Tensors) -> Tensors:
        refs = inputs["refs"].astype(np.float32)
        codepoints = inputs["ref_codepoint"]
        content = graphs["atlas"].run({"codepoint": codepoints})["content"]
        style = graphs["encoder"].run({"refs": refs, "ref_content": content})["style"]
        b, k = codepoints.shape
        redrawn = self._generate(graphs, codepoints.reshape(-1), np.repeat(style, k, axis=0))
        confidence = (
            ink_iou(redrawn, refs.reshape(b * k, *refs.shape[2:])).reshape(b, k).mean(axis=1)
        )
        return {"style": style.astype(np.float32), "confidence": confidence.astype(np.float32)}

    # -- a font in steps: the worker's long-job lane runs one step at a time (app/worker/lanes.py)

    def step_count(self, inputs: Tensors, chunk: int) -> int:
        """How many steps a long job takes, `chunk` glyphs a step; 0 for a job of one step."""
        if "font_codepoints" not in inputs:
            return 0
        rows, total = inputs["font_codepoints"].shape
        return int(rows * max(1, -(-total // chunk)))

    def run_step(
        self,
        signature: dict[str, Any],
        graphs: dict[str, Graph],
        inputs: Tensors,
        index: int,
        chunk: int,
    ) -> bytes:
        """Step `index`: generate and trace its glyphs; their contours, packed."""
        from app.fonts import contours_of, pack_contours

        row, start = _font_step(inputs, index, chunk)
        part = inputs["font_codepoints"][row, start : start + chunk]
        style = inputs["font_style"][row]
        ink = self._generate(graphs, part, np.repeat(style[None], len(part), axis=0))
        return pack_contours(contours_of(ink))

    def finish_steps(
        self, signature: dict[str, Any], inputs: Tensors, states: list[bytes]
    ) -> Tensors:
        """The fonts built from every step's contours (the job's outputs)."""
        from app.fonts import font_from_contours, unpack_contours

        family = str(signature.get("font_family", "hanmo"))
        per_row = len(states) // len(inputs["font_codepoints"])
        blobs = []
        for row, codepoints in enumerate(inputs["font_codepoints"]):
            traced = [
                g for s in states[row * per_row : (row + 1) * per_row] for g in unpack_contours(s)
            ]
            blobs.append(font_from_contours(traced, codepoints, family))
        width = max(len(b) for b in blobs)
        ttf = np.zeros((len(blobs), width), np.uint8)
        for i, blob in enumerate(blobs):
            ttf[i, : len(blob)] = np.frombuffer(blob, np.uint8)
        return {"ttf": ttf, "ttf_size": np.array([len(b) for b in blobs], np.int64)}

    def _font(
        self, signature: dict[str, Any], graphs: dict[str, Graph], inputs: Tensors
    ) -> Tensors:
        """A font job in one call (outside the worker's lane): every step, then the build."""
        steps = self.step_count(inputs, FONT_CHUNK)
        states = []
        for index in range(steps):
            states.append(self.run_step(signature, graphs, inputs, index, FONT_CHUNK))
            progress.report(0.95 * (index + 1) / steps)
        outputs = self.finish_steps(signature, inputs, states)
        progress.report(1.0)
        return outputs


def _font_step(inputs: Tensors, index: int, chunk: int) -> tuple[int, int]:
    """(row, first glyph) of a font job's step `index`."""
    per_row = max(1, -(-inputs["font_codepoints"].shape[1] // chunk))
    return index // per_row, (index % per_row) * chunk


def _field_problems(signature: dict[str, Any]) -> list[str]:
    problems = [
        f"a style_transfer card must give signature.{field} >= 1"
        for field in ("size", "style_dim", "struct_dim")
        if positive(signature.get(field)) is None
    ]
    if not signature.get("chars"):
        problems.append("a style_transfer card must list its characters (signature.chars)")
    em_ratio = signature.get("em_ratio")  # optional: the shared EM_RATIO without it
    if em_ratio is not None and (
        not isinstance(em_ratio, int | float) or not 0.1 <= em_ratio <= 1.0
    ):
        problems.append(
            "signature.em_ratio (the references' ink box as a fraction of the glyph) must be "
            "a number in [0.1, 1]"
        )
    return problems


def _io_problems(graphs: dict[str, Graph]) -> list[str]:
    want = {
        "encoder": ({"refs", "ref_content"}, "style"),
        "generator": ({"content", "struct", "style"}, "glyph"),
    }
    return [
        f"the {role} graph must take {sorted(inputs)} and give {output!r}"
        for role, (inputs, output) in want.items()
        if role in graphs
        and (
            {i.name for i in graphs[role].inputs} != inputs
            or output not in {o.name for o in graphs[role].outputs}
        )
    ]


def _atlas_problems(signature: dict[str, Any], atlas: Atlas) -> list[str]:
    problems = []
    missing = [c for c in signature["chars"] if ord(c) not in atlas.index]
    if missing:
        problems.append(f"{len(missing)} characters of signature.chars are not in the atlas")
    size = int(signature["size"])
    if atlas.content.ndim not in (3, 4) or atlas.content.shape[-2:] != (size, size):
        problems.append(f"atlas glyphs are {atlas.content.shape[1:]}, the card says {size}")
    return problems


def ink_iou(a: np.ndarray, b: np.ndarray, level: float = 0.5) -> np.ndarray:
    p, t = a >= level, b >= level
    union = (p | t).sum(axis=(1, 2))
    return np.where(union > 0, (p & t).sum(axis=(1, 2)) / np.maximum(union, 1), 1.0)
