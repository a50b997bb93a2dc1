"""A model version loaded for one device: its graphs, its kind, and one `run` per batch."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app import tracing
from app.kinds.base import Graph, Kind, Tensors
from app.kinds.catalog import get_kind
from app.registry import artifacts
from app.registry.cards import Card
from app.registry.service import ServedVersion
from app.runtime.checks import checked_graphs
from app.runtime.sessions import runtime_version
from app.settings import Settings


@dataclass
class LoadedModel:
    served: ServedVersion
    kind: Kind
    graphs: dict[str, Graph]
    signature: dict[str, Any]
    runtime: str
    warmup_ms: float = 0.0
    stats: dict[str, int] = field(default_factory=lambda: {"batches": 0, "rows": 0})

    @property
    def provider(self) -> str:
        return next(iter(self.graphs.values())).provider

    def run(self, inputs: Tensors) -> Tensors:
        """The kind's graphs on one chunk of rows: a `graph run` span when tracing."""
        with tracing.span("graph run"):
            return self.kind.run(self.signature, self.graphs, inputs)

    def batch_rows(self, limit: int) -> int:
        """Rows per graph call: the worker's limit, or the card's `signature.max_batch_rows`
        when smaller (a model slower per row in large batches, e.g. the glyph generator)."""
        own = self.signature.get("max_batch_rows")
        return max(1, min(limit, int(own))) if own else limit

    def warm_up(self, rows: int = 8) -> None:
        """Run the graphs once so the first real batch pays no lazy initialisation."""
        start = time.perf_counter()
        self.kind.run(self.signature, self.graphs, self.kind.example(self.signature, rows))
        self.warmup_ms = (time.perf_counter() - start) * 1000


def load_graphs(directory: Path, card: Card, device: str, threads: int) -> dict[str, Graph]:
    """The card's graphs loaded and checked against its kind (every problem in one error)."""
    return checked_graphs(directory, card, device, threads)


def check_artifact(directory: Path, card: Card) -> None:
    """Check a model directory on CPU: its files' sha256, its graphs against its kind's
    contract and their runs on random inputs; one ContractViolation listing every problem."""
    checked_graphs(directory, card, "cpu", 1, verify_files=True)


def load_model(
    served: ServedVersion, settings: Settings, device: str, threads: int, verify_files: bool = False
) -> LoadedModel:
    """Fetch (if remote: into `settings`' cache directory, with its storage options), load,
    check and warm up one served version, its URI resolved against `settings`' artifact root
    (`verify_files`: check every file's sha256 too, as the upload check does)."""
    card = served.parsed_card()
    cache_dir = settings.resolved_cache_dir()
    directory = artifacts.local_path(served.artifact_uri, card, settings, cache_dir)
    graphs = checked_graphs(directory, card, device, threads, verify_files, settings.ort_spin)
    kind = get_kind(card.kind).graph
    signature = card.signature.as_dict()
    model = LoadedModel(served, kind, graphs, signature, runtime_version(card.format))
    model.warm_up()
    return model


def concat_rows(batches: list[Tensors]) -> Tensors:
    """Stack the inputs of several jobs along the row axis."""
    if len(batches) == 1:
        return batches[0]
    return {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}


def split_rows(outputs: Tensors, counts: list[int]) -> list[Tensors]:
    """Cut a batch's outputs back into per-job pieces of the given row counts."""
    bounds = np.cumsum(counts)[:-1]
    pieces = {name: np.split(value, bounds) for name, value in outputs.items()}
    return [{name: pieces[name][i] for name in outputs} for i in range(len(counts))]
