"""The model card: the contract between a training job, the registry and the workers."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from hanmo_client.export import sha256_file as sha256_file  # the hash cards name
from hanmo_client.schemas import NAME_PATTERN
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    field_serializer,
    field_validator,
)
from pydantic_core import ErrorDetails

from app.kinds.base import raise_problems
from app.kinds.catalog import KINDS
from app.kinds.signature import Signature
from app.kinds.spec import KindSpec

Format = Literal["onnx", "torchscript"]


class GraphSpec(BaseModel):
    """One graph of a model version: its file, checksum and I/O names."""

    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    inputs: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)


class Card(BaseModel):
    """card.json beside the artifact, the fields every kind shares. Extra fields are kept as
    given. Parse with `parse_card`: it picks the kind's card (and typed signature) by `kind`."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=NAME_PATTERN, description="the model's name in URLs")
    kind: str = Field(description="one of the kinds GET /v1/kinds lists")
    format: Format = "onnx"
    graphs: dict[str, GraphSpec] = Field(description="graph role -> its file, sha256 and I/O")
    files: dict[str, str] = Field(default_factory=dict, description="side file -> sha256")
    signature: Signature = Field(
        default_factory=Signature, description="the kind's contract fields"
    )
    description: str = ""
    seed: int | None = None
    data: dict[str, Any] | str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    command: str | None = None
    code_revision: str | None = None

    @field_validator("kind")
    @classmethod
    def _served_kind(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}")
        return kind

    @field_serializer("signature")
    def _signature_as_given(self, signature: Signature) -> dict[str, Any]:
        return signature.as_dict()

    def checksums(self) -> dict[str, str]:
        """Every file of the artifact with its expected sha256."""
        return {**{g.file: g.sha256 for g in self.graphs.values()}, **self.files}

    def digest(self) -> str:
        """The version's sha256: a digest over its files' names and checksums."""
        lines = "".join(f"{name} {sha}\n" for name, sha in sorted(self.checksums().items()))
        return hashlib.sha256(lines.encode()).hexdigest()


def _card_class(spec: KindSpec) -> type[Card]:
    """A kind's card: `kind` fixed to its name, `signature` its typed model."""
    title = "".join(part.title() for part in spec.name.split("_"))
    return create_model(
        f"{title}Card",
        __base__=Card,
        __doc__=f"card.json of a {spec.noun}: {spec.description}",
        kind=(Literal[spec.name], ...),  # type: ignore[arg-type]
        signature=(spec.signature, Field(description=spec.signature.__doc__ or "")),
    )


CARD_MODELS: dict[str, type[Card]] = {name: _card_class(spec) for name, spec in KINDS.items()}
AnyCard: Any = Annotated[Union[tuple(CARD_MODELS.values())], Field(discriminator="kind")]  # noqa: UP007
CARDS: TypeAdapter[Card] = TypeAdapter(AnyCard)


def card_model(kind: str) -> type[Card]:
    """The card class of a kind."""
    return CARD_MODELS[kind]


def parse_card(data: dict[str, Any] | str | bytes) -> Card:
    """A card.json (parsed, or its text) as its kind's card; ValidationError names each bad
    field (a signature's fields are checked by the kind's typed model)."""
    if isinstance(data, str | bytes):
        return CARDS.validate_json(data)
    return CARDS.validate_python(data)


def read_card(directory: Path) -> Card:
    """Parse `card.json` in a model directory."""
    try:
        return parse_card((directory / "card.json").read_text())
    except ValidationError as exc:
        raise_problems([field_problem(error) for error in exc.errors()])
        raise  # raise_problems raised: an error lists at least one problem


def field_problem(error: ErrorDetails) -> str:
    """One pydantic error of a card as a problem line naming the card's field."""
    loc = list(error["loc"])
    if loc[1:2] == ["signature"] or (len(loc) > 1 and loc[0] in KINDS):
        loc = loc[1:]  # the discriminated union's tag (the kind) is not a field of the card
    where = ".".join(str(part) for part in loc) or "(the whole card)"
    return f"card.json field `{where}`: {error['msg']}"
