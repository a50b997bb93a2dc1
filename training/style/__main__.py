"""The style-transfer job: render the glyph bank, train, evaluate on the held-out grid, export.

    python -m training.style --out models --docs docs/models     # the shipped run (CPU, 64 px)
    python -m training.style --smoke --out /tmp/m --docs /tmp/d         # minutes, for tests
    python -m training.style --size 128 --device cuda --out models ...  # on a GPU

Training resumes from nothing: a finished run leaves its weights in
.cache/style/<config-hash>.pt, and a rerun with the same configuration and data reuses them
(``--retrain`` ignores them), so evaluation and export can be repeated without retraining.
``--then STEPS:LR`` adds a cycle (warm-up and cosine again, from the weights the run before
left), cached under a key that names the checkpoint it started from; ``STEPS:LR:FOCUS`` draws
that cycle's font groups by how badly they are fitted (``TrainConfig.focus``), and
``STEPS:LR:FOCUS:BLEND`` blends that share of its episodes' fonts with another training font
(``TrainConfig.blend``). ``--from KEY`` starts the cycles from a cached checkpoint trained
elsewhere (a shipped version's, recovered) instead of the run the arguments describe.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from training.data import bank as banklib
from training.data import chars as charsets
from training.data import fonts as fontlib
from training.data import structure
from training.style.augment import Restyle, with_options
from training.style.model import StyleTransfer
from training.style.train import TrainConfig, default_bf16, new_model, train

CACHE = Path(__file__).resolve().parents[2] / ".cache" / "style"
SMOKE_FONTS = [
    "noto-sans-sc-regular",
    "noto-sans-sc-bold",
    "wqy-zenhei",
    "ar-pl-ukai-cn",
    "lxgw-wenkai",
]


def cycle(text: str) -> tuple[int, float, float, float]:
    """--then's STEPS:LR[:FOCUS[:BLEND]], e.g. 5000:6e-4, 5000:6e-4:1 or 5000:6e-4:0:0.3
    (focus and blend 0 where absent)."""
    try:
        steps, lr, *rest = text.split(":")
        if len(rest) > 2:
            raise ValueError
        extra = [float(r) for r in rest] + [0.0] * (2 - len(rest))
        parsed = int(steps), float(lr), extra[0], extra[1]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: want STEPS:LR[:FOCUS[:BLEND]], e.g. 5000:6e-4 or 5000:6e-4:0:0.3"
        ) from None
    if parsed[0] < 1 or not parsed[1] >= 0 or not 0 <= parsed[2] <= 4 or not 0 <= parsed[3] <= 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}: STEPS >= 1, LR >= 0, 0 <= FOCUS <= 4, 0 <= BLEND <= 1"
        )
    return parsed


def kl_weight(text: str) -> float:
    """--kl-weight: the style code's KL term's weight, a finite number >= 0."""
    try:
        weight = float(text)
    except ValueError:
        weight = float("nan")
    if not 0 <= weight < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: want a weight >= 0, e.g. 1e-4")
    return weight


def restyle_options(text: str) -> Restyle:
    """--restyle: the default Restyle with the options named; a bad pair is a usage error."""
    try:
        return with_options(Restyle(), text)
    except ValueError as bad:
        raise argparse.ArgumentTypeError(str(bad)) from None


def without(argv: list[str], valued: tuple[str, ...], flags: tuple[str, ...] = ()) -> list[str]:
    """``argv`` less each option of ``valued`` with its value (``--opt V`` or ``--opt=V``) and
    each of ``flags``."""
    out, rest = [], list(argv)
    while rest:
        arg = rest.pop(0)
        if arg in valued:
            rest.pop(0)
        elif arg.split("=")[0] not in (*valued, *flags):
            out.append(arg)
    return out


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
        "--then",
        metavar="STEPS:LR[:FOCUS[:BLEND]]",
        type=cycle,
        action="append",
        default=[],
        help="after the run --steps and --lr describe, another warm-up and cosine cycle of "
        "STEPS at peak LR from its weights (repeatable); each cycle is cached under its own "
        "key, so a finished run is reused (`python -m training.style.recover` writes a "
        "shipped version's weights back to the cache)",
    )
    p.add_argument(
        "--from",
        dest="start",
        metavar="KEY",
        help="with --then: the run's weights are the cached checkpoint KEY (.cache/style/KEY.pt, "
        "e.g. a shipped version's, which `python -m training.style.recover DIR` writes), not a "
        "run this command describes; its cycles start there",
    )
    p.add_argument("--batch", type=int, default=TrainConfig.batch)
    p.add_argument("--width", type=int, default=TrainConfig.width)
    p.add_argument("--tokens", type=int, default=TrainConfig.tokens)
    p.add_argument("--warp", action=argparse.BooleanOptionalAction, default=TrainConfig.warp)
    p.add_argument(
        "--kl-weight",
        type=kl_weight,
        default=TrainConfig.kl_weight,
        help="the style code's KL term's weight in the loss (every cycle's)",
    )
    # default: bfloat16 autocast where the device runs it natively (train.default_bf16), as the
    # shipped run did; float32 elsewhere, where bfloat16 ran 10-15x slower (and exact
    # reproduction of the shipped weights is out of reach anyway)
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument(
        "--loaders",
        type=int,
        default=TrainConfig.loaders,
        help="worker processes drawing the episodes while the device steps (each its own "
        "stream): for a GPU, which steps faster than one core draws; 0 = the shipped stream",
    )
    p.add_argument(
        "--ema",
        type=float,
        default=TrainConfig.ema,
        help="end each cycle on an exponential moving average of its weights with this decay "
        "(e.g. 0.999); 0 = the last step's weights",
    )
    p.add_argument(
        "--restyle",
        type=restyle_options,
        metavar="NAME=V[,NAME=V...]",
        help="synthetic-style options changed from training.style.augment.Restyle's defaults, "
        "e.g. warp=0.1,pressure=0.8 (every cycle's)",
    )
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
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.trained_by = None
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
    if not 0 <= args.ema < 1:
        p.error(f"--ema {args.ema}: want a decay in [0, 1)")
    if args.loaders < 0:
        p.error(f"--loaders {args.loaders}: want 0 or more worker processes")
    if args.loaders and any(focus for _, _, focus, _ in args.then):
        p.error("--loaders draws episodes apart from the step: not with --then's FOCUS")
    if args.start and not args.then:
        p.error("--from names where --then's cycles start: give at least one --then")
    if args.start and args.retrain:
        # --retrain would train the run the arguments describe from scratch and cache it under
        # the named key, which stands for weights trained elsewhere
        p.error("--from's checkpoint was trained elsewhere: not with --retrain")
    if args.smoke:
        args.steps, args.batch, args.width = 30, 8, 16
        args.train_chars, args.heldout_chars = 120, 40
    return args


def checkpoint_key(
    cfg: TrainConfig, size: int, bank: banklib.GlyphBank, vocab: list[str], start: list[str]
) -> str:
    """What a trained checkpoint depends on: the configuration, the data, the rendering, and
    for a continuation (--then) the checkpoint it started from."""
    config = asdict(cfg)
    # keys from before these options existed stay the same
    for option in ("focus", "blend", "loaders", "ema", "match", "match_slots"):
        if not config[option]:
            del config[option]
    for option in ("warp", "pressure"):  # the restyle's, likewise
        if config["restyle"] is not None and not config["restyle"][option]:
            del config["restyle"][option]
    facts = [
        config,
        size,
        bank.fonts,
        bank.chars,
        vocab,
        fontlib.render_key(),
        fontlib.CONTENTS,
    ]
    return hashlib.sha256(json.dumps(facts + start).encode()).hexdigest()[:16]


def trained(
    bank: banklib.GlyphBank,
    cycles: list[TrainConfig],
    keys: list[str],
    args: argparse.Namespace,
) -> tuple[StyleTransfer, list[dict[str, float]]]:
    """The model after the last of ``cycles`` (each from the weights the one before left),
    from the latest cached one on (none with --retrain), each new one cached under its key;
    and the last cycle's history."""
    model = new_model(bank, cycles[0])
    paths = [CACHE / f"{key}.pt" for key in keys]
    done = [i for i, path in enumerate(paths) if path.exists()]
    # a later cycle's checkpoint continues from the named one, which it no longer needs
    if args.start and not done:
        raise SystemExit(
            f"--from {args.start}: no {paths[0]} (`python -m training.style.recover DIR` writes "
            "a shipped version's weights there)"
        )
    first = done[-1] if done and not args.retrain else -1
    history: list[dict[str, float]] = []
    if first >= 0:
        state = torch.load(paths[first], weights_only=False)
        model.load_state_dict(state["model"])
        history = list(state["history"])
        # trained elsewhere and adopted (training.style.portable): the commands that trained it
        args.trained_by = state.get("commands")
        print(f"reusing {paths[first]}", flush=True)
    for i in range(first + 1, len(cycles)):
        cfg = cycles[i]
        if i:
            print(f"cycle {i + 1}: {cfg.steps} steps at {cfg.lr} from {keys[i - 1]}", flush=True)
        model.to(args.device)
        history = train(
            model, bank, cfg, log=lambda row: print(row, flush=True), device=args.device
        )
        model.to("cpu")
        CACHE.mkdir(parents=True, exist_ok=True)
        # a cycle from an adopted checkpoint keeps the commands that trained its start
        made = {"commands": args.trained_by} if args.trained_by else {}
        torch.save({"model": model.state_dict(), "history": history, **made}, paths[i])
        print(f"wrote {paths[i]}", flush=True)
    model.eval()
    return model, history


def split(args: argparse.Namespace) -> tuple[banklib.GlyphBank, list[str]]:
    """The glyph bank the arguments describe (rendered, or read from .cache/glyphs) and the
    structure codes' component vocabulary."""
    vocab = structure.vocabulary(charsets.gb2312((1, 2)), 256)
    bank = banklib.build(
        args.size,
        args.train_chars,
        args.heldout_chars,
        args.seed,
        vocab,
        SMOKE_FONTS if args.smoke else None,
        workers=args.threads,
    )
    return bank, vocab


def cycles_of(args: argparse.Namespace) -> list[TrainConfig]:
    """The training cycles the arguments describe: the run, then each --then."""
    cfg = TrainConfig(
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        width=args.width,
        tokens=args.tokens,
        warp=args.warp,
        kl_weight=args.kl_weight,
        bf16=args.bf16,
        seed=args.seed,
        loaders=args.loaders,
        ema=args.ema,
    )
    if args.restyle:
        cfg = replace(cfg, restyle=args.restyle)
    more = [replace(cfg, steps=n, lr=lr, focus=f, blend=m) for n, lr, f, m in args.then]
    return [cfg, *more]


def plan(
    args: argparse.Namespace, bank: banklib.GlyphBank, vocab: list[str]
) -> tuple[list[TrainConfig], list[str]]:
    """The training cycles (the run, then each --then) and their checkpoint keys."""
    cycles = cycles_of(args)
    keys: list[str] = []
    for i, c in enumerate(cycles):
        # a cycle's key names the one it starts from; the first cycle's is the plain run's, or
        # with --from the checkpoint named (trained elsewhere, on whatever data it was)
        start = args.start if i == 0 else None
        keys.append(start or checkpoint_key(c, args.size, bank, vocab, keys[-1:]))
    return cycles, keys


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.bf16_note:
        print(args.bf16_note, flush=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()
    bank, vocab = split(args)
    print(
        f"bank: {len(bank.fonts)} fonts ({len(bank.font_index('train'))} train), "
        f"{len(bank.chars)} chars, {time.time() - started:.0f}s",
        flush=True,
    )
    cycles, keys = plan(args, bank, vocab)
    model, history = trained(bank, cycles, keys, args)
    if args.train_only:
        return 0
    from training.style.job import finish

    finish(model, bank, vocab, cycles, history, args, ckpt_keys=keys, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
