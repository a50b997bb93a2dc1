"""The style-transfer job: render the glyph bank, train, evaluate on the held-out grid, export.

    python -m training.style --out models --docs docs/models     # the shipped run (CPU, 64 px)
    python -m training.style --smoke --out /tmp/m --docs /tmp/d         # minutes, for tests
    python -m training.style --size 128 --device cuda --out models ...  # on a GPU

Training resumes from nothing: a finished run leaves its weights in
.cache/style/<config-hash>.pt, and a rerun with the same configuration and data reuses them
(``--retrain`` ignores them), so evaluation and export can be repeated without retraining.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from training.data import bank as banklib
from training.data import chars as charsets
from training.data import fonts as fontlib
from training.data import structure
from training.style.train import TrainConfig, default_bf16, new_model, train

CACHE = Path(__file__).resolve().parents[2] / ".cache" / "style"
SMOKE_FONTS = [
    "noto-sans-sc-regular",
    "noto-sans-sc-bold",
    "wqy-zenhei",
    "ar-pl-ukai-cn",
    "lxgw-wenkai",
]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.style")
    p.add_argument("--out", type=Path, default=Path("models"))
    p.add_argument("--docs", type=Path, default=Path("docs/models"))
    p.add_argument("--name", default="glyph-style")
    p.add_argument("--version", default="1")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--lr", type=float, default=TrainConfig.lr, help="peak, after the warm-up")
    p.add_argument(
        "--init",
        metavar="KEY",
        help="start from the weights of the cached run .cache/style/KEY.pt (a card's "
        "metrics.training.checkpoint; `python -m training.style.recover` writes a shipped "
        "version's) instead of from scratch: a second cosine cycle of --steps",
    )
    p.add_argument("--batch", type=int, default=TrainConfig.batch)
    p.add_argument("--width", type=int, default=TrainConfig.width)
    p.add_argument("--tokens", type=int, default=TrainConfig.tokens)
    p.add_argument("--warp", action=argparse.BooleanOptionalAction, default=TrainConfig.warp)
    # default: bfloat16 autocast where the device runs it natively (train.default_bf16), as the
    # shipped run did; float32 elsewhere, where bfloat16 ran 10-15x slower (and exact
    # reproduction of the shipped weights is out of reach anyway)
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--train-chars", type=int, default=2000)
    p.add_argument("--heldout-chars", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--smoke", action="store_true", help="tiny data and steps: a test of the pipeline"
    )
    p.add_argument("--retrain", action="store_true")
    p.add_argument("--train-only", action="store_true")
    args = p.parse_args(argv)
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {args.device}: torch sees no CUDA device on this machine")
    args.bf16_note = None
    if args.bf16 is None:
        args.bf16 = default_bf16(args.device)
        if TrainConfig.bf16 and not args.bf16:
            args.bf16_note = (
                f"training in float32: {args.device} has no native bfloat16 kernels (oneDNN "
                "wants AVX-512 or AMX), where bfloat16 autocast runs 10-15x slower. The shipped "
                "model was trained in bfloat16, so this run will not reproduce its weights "
                "byte for byte; --bf16 forces bfloat16."
            )
    if args.init and not (CACHE / f"{args.init}.pt").exists():
        p.error(f"--init {args.init}: no {CACHE / f'{args.init}.pt'} (train it, or recover it)")
    if args.smoke:
        args.steps, args.batch, args.width = 30, 8, 16
        args.train_chars, args.heldout_chars = 120, 40
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.bf16_note:
        print(args.bf16_note, flush=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()
    vocab = structure.vocabulary(charsets.gb2312((1, 2)), 256)
    font_names = None
    if args.smoke:
        font_names = SMOKE_FONTS
    bank = banklib.build(
        args.size,
        args.train_chars,
        args.heldout_chars,
        args.seed,
        vocab,
        font_names,
        workers=args.threads,
    )
    print(
        f"bank: {len(bank.fonts)} fonts ({len(bank.font_index('train'))} train), "
        f"{len(bank.chars)} chars, {time.time() - started:.0f}s",
        flush=True,
    )
    cfg = TrainConfig(
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        width=args.width,
        tokens=args.tokens,
        warp=args.warp,
        bf16=args.bf16,
        seed=args.seed,
    )
    key = hashlib.sha256(
        json.dumps(
            [
                asdict(cfg),
                args.size,
                bank.fonts,
                bank.chars,
                vocab,
                fontlib.render_key(),
                fontlib.CONTENTS,
            ]
            # a continuation's key names its start; a run from scratch keeps its old key
            + ([args.init] if args.init else [])
        ).encode()
    ).hexdigest()[:16]
    ckpt = CACHE / f"{key}.pt"
    model = new_model(bank, cfg)
    if ckpt.exists() and not args.retrain:
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        history = state["history"]
        print(f"reusing {ckpt}", flush=True)
    else:
        if args.init:
            start = CACHE / f"{args.init}.pt"
            model.load_state_dict(torch.load(start, weights_only=False)["model"])
            print(f"starting from {start}", flush=True)
        model.to(args.device)
        history = train(
            model, bank, cfg, log=lambda row: print(row, flush=True), device=args.device
        )
        model.to("cpu")
        CACHE.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "history": history}, ckpt)
        print(f"wrote {ckpt}", flush=True)
    model.eval()
    if args.train_only:
        return 0
    from training.style.job import finish

    finish(model, bank, vocab, cfg, history, args, ckpt_key=key, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
