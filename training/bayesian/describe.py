"""python -m training.bayesian.describe [MODELS_DIR]: add `data.feature_summary` (min, median,
max per feature, from the same loaders the training job uses) to the shipped regression cards.

`make train-bayesian` writes the same field itself; this fills it into cards trained before it
existed without retraining, and changes nothing else in them (graphs, checksums, metrics)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from training.bayesian import data, regression


def describe(models: Path) -> list[Path]:
    written = []
    for name in regression.NAMES:
        ds = regression.dataset_of(name)
        x, _ = ds.load()
        for path in sorted((models / name).glob("*/card.json")):
            card = json.loads(path.read_text())
            card["data"]["feature_summary"] = data.feature_summary(x, ds.features)
            path.write_text(json.dumps(card, indent=2) + "\n")
            written.append(path)
    return written


if __name__ == "__main__":
    for path in describe(Path(sys.argv[1] if len(sys.argv) > 1 else "models")):
        print(f"wrote {path}")
