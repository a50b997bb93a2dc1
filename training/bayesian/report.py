"""Job results, model directories, cards and the docs PNGs (matplotlib, Agg): the
interval-coverage plot (regression) and the reliability diagram (classification)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from training.bayesian.export import Predictive

COMMAND = "make train-bayesian"
MODEL_VERSION = "1"


@dataclass
class Result:
    """A finished model: its directory, card metrics, the exported module (for parity
    tests) and its wall time."""

    name: str
    directory: Path
    metrics: dict[str, Any]
    module: Predictive | None = None
    seconds: float = 0.0
    summary: list[tuple[str, Any]] = field(default_factory=list)


def model_dir(out: Path, name: str) -> Path:
    directory = out / name / MODEL_VERSION
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def coverage_plot(
    curves: dict[str, tuple[list[float], np.ndarray, np.ndarray]], path: Path, title: str
) -> None:
    """curves: label -> (nominal levels, mean empirical coverage, its standard error)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", label="ideal")
    for i, (label, (levels, mean, se)) in enumerate(curves.items()):
        style = "-" if i == 0 else "--"
        ax.errorbar(levels, mean, yerr=se, marker="o", ms=3, linestyle=style, label=label)
    ax.set_xlabel("nominal coverage of the central interval")
    ax.set_ylabel("empirical coverage (test, mean ± SE over splits)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def reliability_plot(bins: dict[str, dict[str, list[Any]]], path: Path, title: str) -> None:
    """bins: label -> metrics.reliability() output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", label="ideal")
    for i, (label, rel) in enumerate(bins.items()):
        pts = [
            (c, a, n)
            for c, a, n in zip(rel["confidence"], rel["accuracy"], rel["count"], strict=True)
            if n
        ]
        conf, acc, count = (np.array(v) for v in zip(*pts, strict=True))
        ax.plot(conf, acc, marker="o", ms=3, linestyle="-" if i == 0 else "--", label=label)
        if i == 0:
            for c, a, n in zip(conf, acc, count, strict=True):
                ax.annotate(str(n), (c, a), fontsize=6, xytext=(2, -8), textcoords="offset points")
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
