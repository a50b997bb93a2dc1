"""Train the style job's networks where its fonts are not: a packed glyph bank.

A lent GPU machine (docs/decisions.md, "A run on a lent GPU") reaches no package registry, so
it cannot install the job's fonts, and its calls carry at most 64 MiB. ``pack`` writes what
training reads of the job's bank (the training fonts' glyphs of the training characters, the
content glyphs, the structural codes, the font table) into one lzma-compressed file;
``train`` trains on it exactly as ``python -m training.style`` would (same ``TrainConfig``,
same ``train``), and writes the checkpoint; ``adopt`` puts that checkpoint in the job's cache
under the key the job computes for the same arguments, so the ordinary job command then
evaluates and exports it here, on the real bank::

    python -m training.style.portable pack /tmp/bank.xz
    python -m training.style.portable train /tmp/bank.xz run.pt --device cuda --batch 128 ...
    python -m training.style.portable adopt run.pt     # prints the job command that evaluates it

``train`` takes the job's options (``--width``, ``--batch``, ``--loaders``, ``--then`` ...) and
two of its own: ``--budget SECONDS`` times a few steps first and sets ``--steps`` to what fits
(a multiple of 500, at most ``--steps``), since a lent machine is held for minutes; ``--init
RUN.pt`` starts from a checkpoint ``train`` wrote, with that run's ``--then`` cycles and one
more, and trains that last cycle only. The checkpoint holds the steps, the options and the
commands that made it; ``adopt`` takes them from there, and the card's ``command`` lists them.
"""

from __future__ import annotations

import io
import json
import lzma
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.data.bank import GlyphBank
from training.style.__main__ import CACHE, cycles_of, parse, plan, split, without
from training.style.train import TrainConfig, default_bf16, new_model, train

META = ("fonts", "sides", "groups", "chars", "n_train_chars")


def pack(bank: GlyphBank, path: Path) -> int:
    """Write ``bank`` with the glyphs training never reads (held-out fonts, held-out
    characters) zeroed; returns the file's size in bytes."""
    glyphs = bank.glyphs.copy()
    have = bank.have.copy()
    train_fonts = np.zeros(len(bank.fonts), bool)
    train_fonts[bank.font_index("train")] = True
    glyphs[~train_fonts] = 0
    glyphs[:, bank.n_train_chars :] = 0
    have[~train_fonts] = False
    have[:, bank.n_train_chars :] = False
    meta = json.dumps({m: getattr(bank, m) for m in META})
    buf = io.BytesIO()
    np.savez(
        buf,
        glyphs=glyphs,
        have=have,
        content=bank.content,
        struct=bank.struct,
        meta=np.frombuffer(meta.encode(), np.uint8),
    )
    with lzma.open(path, "wb", preset=6) as f:
        f.write(buf.getbuffer())
    return path.stat().st_size


def unpack(path: Path) -> GlyphBank:
    with lzma.open(path, "rb") as f:
        data = np.load(io.BytesIO(f.read()))
        meta = json.loads(bytes(data["meta"]).decode())
        return GlyphBank(
            **meta,
            glyphs=data["glyphs"],
            have=data["have"],
            content=data["content"],
            struct=data["struct"],
        )


def fit_steps(bank: GlyphBank, cfg: TrainConfig, device: str, budget: float) -> int:
    """Steps of ``cfg`` that fit in ``budget`` seconds on ``device``: 20 steps timed after 10
    of warm-up, on a throwaway model; a multiple of 500, at most ``cfg.steps``."""
    probe = replace(cfg, steps=30, log_every=10)
    model = new_model(bank, probe).to(device)
    marks: list[float] = []
    train(model, bank, probe, log=lambda row: marks.append(time.time()), device=device)
    per_step = (marks[-1] - marks[0]) / 20
    steps = min(cfg.steps, max(500, int(budget / per_step) // 500 * 500))
    print(f"{per_step * 1000:.1f} ms a step: {steps} steps for {budget:.0f} s", flush=True)
    return steps


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbs = {"pack": _pack, "train": _train, "adopt": _adopt}
    if not argv or argv[0] not in verbs:
        print(__doc__)
        return 2
    verbs[argv[0]](argv[1:])
    return 0


def _pack(rest: list[str]) -> None:
    out = Path(rest[0])
    bank, _ = split(parse(rest[1:]))
    print(f"{out}: {pack(bank, out) / 2**20:.1f} MiB", flush=True)


def _train(rest: list[str]) -> None:
    src, out = Path(rest[0]), Path(rest[1])
    opts = rest[2:]  # the job's options, less this command's own
    budget, init = _take(opts, "--budget"), _take(opts, "--init")
    device = opts[opts.index("--device") + 1] if "--device" in opts else "cpu"
    if "--bf16" not in opts and "--no-bf16" not in opts:
        opts.append("--bf16" if default_bf16(device) else "--no-bf16")
    start = torch.load(init, weights_only=False) if init else None
    if start is not None and ("--steps" in opts or budget is not None):
        raise SystemExit("--init: the steps are the checkpoint's; give its --then cycles and one")
    # the run before: its steps, then its --then cycles and this run's one
    args = parse([*opts, "--steps", str(start["steps"])] if start is not None else opts)
    if start is not None and len(args.then) != len(parse(args_for_job(start)).then) + 1:
        raise SystemExit("--init: give the checkpoint's --then cycles and one more")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    bank = unpack(src)
    if budget is not None:
        first = cycles_of(args)[0]
        args.steps = fit_steps(bank, first, args.device, float(budget))
    cycles = cycles_of(args)
    cfg = cycles[0]
    torch.manual_seed(args.seed)
    model = new_model(bank, cfg)
    if start is not None:
        model.load_state_dict(start["model"])  # float32 weights, whatever the file's precision
        cycles = cycles[-1:]
    model.to(args.device)
    history: list[dict[str, float]] = []
    for c in cycles:
        print({"config": {k: v for k, v in asdict(c).items() if k != "restyle"}}, flush=True)
        history = train(model, bank, c, log=lambda row: print(row, flush=True), device=device)
    model.to("cpu")
    # what ran, as one command (a budget's steps as --steps, the last of which wins)
    where = torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else "cpu"
    ran = [*opts, *(["--init", str(init)] if init else [])]
    ran += ["--steps", str(cfg.steps)] if budget is not None else []
    commands = [*(start or {}).get("commands", ["python -m training.style.portable pack BANK"])]
    commands.append(f"python -m training.style.portable train BANK {out} {' '.join(ran)} ({where})")
    state = {"model": model.state_dict(), "history": history, "steps": cfg.steps, "argv": opts}
    torch.save({**state, "commands": commands}, out)
    print(f"wrote {out}", flush=True)


def _adopt(rest: list[str]) -> None:
    """The job's key for the checkpoint's arguments (with its steps), and the file there."""
    state = torch.load(rest[0], weights_only=False)
    args = parse(args_for_job(state))
    bank, vocab = split(args)
    _, keys = plan(args, bank, vocab)
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / f"{keys[-1]}.pt"  # the last cycle's: the job reuses the latest it finds
    adopted = f"python -m training.style.portable adopt {rest[0]}"
    torch.save({**state, "commands": [*state.get("commands", []), adopted]}, target)
    command = " ".join(["python -m training.style", *args_for_job(state)])
    print(f"{target}\nnow: {command} --out OUT --docs OUT", flush=True)


def _take(argv: list[str], option: str) -> str | None:
    """Remove ``option VALUE`` from ``argv``; the value, or None where it is absent."""
    if option not in argv:
        return None
    i = argv.index(option)
    value = argv[i + 1]
    del argv[i : i + 2]
    return value


def args_for_job(state: dict[str, Any]) -> list[str]:
    """The job's arguments that name what the checkpoint holds, for this machine: the
    training options and the steps the run took, without --device and --threads (the key does
    not depend on where it trained; the job evaluates on the CPU)."""
    kept = without(state["argv"], ("--device", "--threads", "--steps"))
    return [*kept, "--steps", str(state["steps"])]


if __name__ == "__main__":
    sys.exit(main())
