"""A glyph classifier trained on the training fonts only (all split characters, real glyphs):
the in-house judge of content accuracy. Its accuracy on real held-out-font glyphs is the
ceiling that generated glyphs are compared with. Not a published metric: an in-house number."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from training.data.bank import GlyphBank


class GlyphClassifier(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()

        def blk(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(i, o, 3, 1, 1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)
            )

        self.net = nn.Sequential(
            nn.AvgPool2d(2),  # 64 → 32: content survives, compute drops 4×
            blk(1, 24),  # 16
            blk(24, 48),  # 8
            blk(48, 96),  # 4
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(96 * 4 * 4, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.unsqueeze(1))


def train_classifier(
    bank: GlyphBank, epochs: int, seed: int, batch: int = 256, log=print
) -> GlyphClassifier:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    fonts = bank.font_index("train")
    pairs = np.argwhere(bank.have[fonts])  # (font row, char)
    font_ids = np.asarray(fonts)[pairs[:, 0]]
    chars = pairs[:, 1]
    model = GlyphClassifier(len(bank.chars))
    opt = torch.optim.AdamW(model.parameters(), 2e-3, weight_decay=1e-4)
    steps = epochs * (len(chars) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=max(steps, 1))
    start = time.time()
    model.train()
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(chars))
        for i in range(0, len(order) - batch + 1, batch):
            idx = order[i : i + batch]
            x = torch.from_numpy(bank.glyphs[font_ids[idx], chars[idx]].astype(np.float32) / 255.0)
            # small random shifts: generated glyphs are not pixel-aligned with real ones
            dx, dy = rng.integers(-2, 3, size=2)
            x = torch.roll(x, shifts=(int(dy), int(dx)), dims=(1, 2))
            y = torch.from_numpy(chars[idx])
            loss = nn.functional.cross_entropy(model(x), y, label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
        log(
            {
                "classifier_epoch": epoch + 1,
                "loss": round(float(loss.detach()), 4),
                "seconds": round(time.time() - start),
            }
        )
    model.eval()
    return model


@torch.no_grad()
def predict(model: GlyphClassifier, glyphs: np.ndarray, batch: int = 512) -> np.ndarray:
    out = []
    for i in range(0, len(glyphs), batch):
        x = torch.from_numpy(np.asarray(glyphs[i : i + batch], np.float32))
        out.append(model(x).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)
