"""What a kind is, in one record: its typed contract (card signature, graph roles with their
tensors), its request side (prepare: typed request → job inputs and a frozen `JobMeta`), its
graph side (what the worker runs and checks) and its response side (render). The catalog
(`app/kinds/catalog.py`) lists one `KindSpec` per kind; nothing else is keyed by kind name.

This layer knows no web framework, no Redis and no database: `Served` is the little it needs
of a registry version."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from hanmo_client.schemas import DEFAULT_ALIAS
from pydantic import BaseModel

from app.kinds.base import Kind

if TYPE_CHECKING:
    from app.kinds.oip import OipKind

Inputs = dict[str, np.ndarray]
Raw = tuple[bytes, str]  # a rendered body and its media type
Wire = dict[str, Any]  # a job's meta as the queue stores it (JSON)


class Served(Protocol):
    """The version answering a request, as the request and response sides see it."""

    @property
    def model(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def card(self) -> dict[str, Any]: ...


class Finished(Protocol):
    """A finished job's outputs, as the response side sees them."""

    @property
    def tensors(self) -> dict[str, np.ndarray] | None: ...
    @property
    def info(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class JobMeta:
    """What a job carries besides its tensors: which version and op, the alias it came by,
    its row count and the kind's own fields (seed, format, levels, ...), made once by the
    request side and frozen; `wire()` is its stored form (key order kept)."""

    kind: str
    op: str
    model: str
    version: int
    alias: str | None
    sha256: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, served: Served, op: str, options: Any, **fields: Any) -> JobMeta:
        """The meta of a job for `served`: `options` is the request (its `version` pins, else
        its `alias` or the default alias routed it)."""
        pinned = getattr(options, "version", None) is not None
        alias = None if pinned else (getattr(options, "alias", None) or DEFAULT_ALIAS)
        return cls(served.kind, op, served.model, served.version, alias, served.sha256, fields)

    def wire(self, **more: Any) -> Wire:
        return {
            "kind": self.kind,
            "op": self.op,
            "model": self.model,
            "version": self.version,
            "alias": self.alias,
            "sha256": self.sha256,
            **self.fields,
            **more,
        }

    @property
    def rows(self) -> int:
        return int(self.fields.get("n", 1))


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One named tensor of a graph role: dtype and shape, symbolic axes named (N rows, S
    draws, K outputs, ...), fixed sizes given by the card's signature field named in shape."""

    name: str
    dtype: str
    shape: tuple[str | int, ...]
    description: str = ""
    optional: str = ""  # when the tensor exists only sometimes: the condition


@dataclass(frozen=True, slots=True)
class RoleSpec:
    """A graph role of a kind (card.json `graphs.<role>`), with its inputs and outputs."""

    role: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    description: str = ""
    optional: str = ""


Render = Callable[[Wire, str, Finished, str | None], dict[str, Any] | Raw]
Validate = Callable[[Any], object]


@dataclass(frozen=True)
class KindSpec:
    """Everything hanmo knows about one kind."""

    name: str  # card.json `kind`
    noun: str  # "a <noun>" in messages
    description: str
    signature: type[BaseModel]  # card.json `signature`, typed
    graph: Kind  # the worker side: check, example inputs, run one batch
    roles: tuple[RoleSpec, ...]
    render: Render  # the response side: a finished job → JSON body or raw image
    answers: Mapping[str, Validate]  # op → the published answer model's validator
    routes: tuple[str, ...]  # the HTTP routes that serve this kind
    card_fields_read: Mapping[str, str]  # card fields the api and page read, and what for
    render_rows: Callable[[Wire, str | None], int] = lambda meta, accept: int(meta.get("n", 1))
    # Seconds per render row an api process assumes before it has measured its own renders
    # of this kind (app/api/deadlines.py: what a synchronous answer reserves of its deadline).
    render_prior_s: float = 0.0
    # What a job costs a worker, in one unit per kind (its model's rate is measured in it):
    # admission compares a model's queued cost with the work it can finish by a deadline.
    cost: Callable[[JobMeta], float] = lambda job: float(job.rows)
    # Results later requests read (a prediction's draws, scored by feedback): kept for
    # HANMO_PREDICTION_RETENTION_S, and not deleted once a synchronous answer is delivered.
    keeps_results: bool = False
    # How the kind is served over the Open Inference Protocol (/v2); None: it is not.
    oip: OipKind | None = None
