"""What a warping generator's geometry does per font (``TrainConfig.warp``): for each held-out
font and three training fonts, the style code of four references (training characters), then
over 100 held-out characters the mean change the affine head makes to the identity map of the
sampling grid ([[x-scale, shear, x-shift], [shear, y-scale, y-shift]], in grid units of half
the glyph) and the size of the displacement field in pixels (64 px glyphs).

    .venv/bin/python -m training.evaluate.warp_probe .cache/style/<key>.pt

The checkpoint is one that `make train-style ARGS="--warp"` caches (the card's
metrics.training.checkpoint). A measurement, not part of the training job.

On 2026-12-02, on that run's checkpoint (7fe15d0c7580b49c): Smiley Sans x-scale +0.238 /
shear +0.120 (the grid reads a wider span, so the glyph comes out narrower and sheared), ZCOOL
QingKe HuangYou x-scale +0.262, the brush hands small terms (Zhi Mang Xing shear −0.069), the
training fonts Noto Sans SC, AR PL UKai and WenQuanYi Zen Hei within ±0.02; the displacement
field averaged 0.8–1.5 px on the held-out fonts and 0.2–0.6 px on those training fonts."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from training.data import bank as banklib
from training.style.train import load_checkpoint, unit

TRAINING_FONTS = ["noto-sans-sc-regular", "ar-pl-ukai-cn", "wqy-zenhei"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate.warp_probe")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    bank = banklib.shipped()
    model = load_checkpoint(args.checkpoint, bank)
    gen = model.generator
    if not gen.warp:
        p.error("the checkpoint has no warp heads (trained without --warp)")
    # the heads' raw outputs, through the generator's own forward pass
    seen: dict[str, torch.Tensor] = {}
    for head in ("affine", "flow"):
        getattr(gen, head).register_forward_hook(
            lambda m, i, o, head=head: seen.__setitem__(head, o)
        )
    rng = np.random.default_rng(args.seed)

    names = [bank.fonts[i] for i in bank.font_index("heldout")] + TRAINING_FONTS
    for name in (n for n in names if n in bank.fonts):
        f = bank.fonts.index(name)
        refs = rng.choice(bank.train_chars[bank.have[f, bank.train_chars]], 4, replace=False)
        targets = bank.heldout_chars[bank.have[f, bank.heldout_chars]][:100]
        with torch.no_grad():
            style = model.encoder(unit(bank.glyphs[f, refs])[None], unit(bank.content[refs])[None])
            code = style[0].expand(len(targets), -1)
            gen(unit(bank.content[targets]), torch.from_numpy(bank.struct[targets]), code)
        theta = gen.AFFINE_RANGE * torch.tanh(seen["affine"]).reshape(-1, 2, 3)
        t = theta.mean(0).numpy()
        size = gen.FLOW_RANGE * torch.tanh(seen["flow"]).norm(dim=1) * bank.size / 2  # px
        print(
            f"{name:24s} x-scale {t[0, 0]:+.3f} shear {t[0, 1]:+.3f}/{t[1, 0]:+.3f} "
            f"y-scale {t[1, 1]:+.3f} shift {t[0, 2]:+.3f}/{t[1, 2]:+.3f}  "
            f"flow mean {size.mean():.2f} px, p95 {size.flatten().quantile(0.95):.2f} px"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
