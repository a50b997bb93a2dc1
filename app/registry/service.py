"""Registry operations over the repository: register a model directory, resolve aliases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.errors import (
    AliasNotFound,
    Conflict,
    ModelNotFound,
    ModelVersionNotFound,
)
from app.registry import artifacts, repository
from app.registry.cards import Card, read_card
from app.registry.tables import ModelVersion, RegisteredModel, VersionStatus


@dataclass(frozen=True, slots=True)
class ServedVersion:
    """A snapshot of one READY model version: what the api routes to and a worker loads."""

    model: str
    version: int
    kind: str
    format: str
    sha256: str
    artifact_uri: str
    card: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.model}:{self.version}"

    def parsed_card(self) -> Card:
        return Card.model_validate(self.card)


def snapshot(model: RegisteredModel, version: ModelVersion) -> ServedVersion:
    return ServedVersion(
        model=model.name,
        version=version.version,
        kind=version.kind,
        format=version.format,
        sha256=version.sha256,
        artifact_uri=version.artifact_uri,
        card=version.card,
    )


def register_directory(
    sessions: sessionmaker[Session],
    directory: Path,
    artifact_root: str,
    check: Callable[[Path, Card], None],
    alias: str | None = None,
    actor: str = "cli",
) -> ServedVersion:
    """Verify checksums and the kind's contract, store the artifact, add a READY version and
    optionally point an alias at it. Registering the same bytes again reuses their version."""
    card = read_card(directory)
    artifacts.verify_directory(directory, card)
    check(directory, card)
    digest = card.digest()
    with sessions.begin() as session:
        model = repository.get_model(session, card.name)
        if model is None:
            model = repository.create_model(session, card.name, card.kind, card.description)
        elif model.kind != card.kind:
            raise Conflict(f"model {card.name!r} is a {model.kind}, the card says {card.kind}")
        version = repository.find_version_by_sha(session, model.id, digest)
        if version is None:
            number = repository.next_version_number(session, model.id)
            uri = artifacts.store(directory, card, artifact_root, number)
            version = repository.add_version(
                session,
                ModelVersion(
                    model_id=model.id,
                    version=number,
                    kind=card.kind,
                    format=card.format,
                    artifact_uri=uri,
                    sha256=digest,
                    signature=card.signature,
                    card=card.model_dump(mode="json"),
                    status=VersionStatus.READY,
                ),
            )
        if alias and repository.list_aliases(session, model.id).get(alias) != version.version:
            repository.put_alias(session, model, alias, version, actor)
        return snapshot(model, version)


def resolve(session: Session, name: str, alias: str | None, version: int | None) -> ServedVersion:
    """The READY version a request names, by explicit version or by alias."""
    model = repository.get_model(session, name)
    if model is None:
        raise ModelNotFound(f"no model named {name!r}")
    if version is None:
        number = repository.list_aliases(session, model.id).get(alias or "production")
        if number is None:
            raise AliasNotFound(f"model {name!r} has no alias {alias or 'production'!r}")
        version = number
    row = repository.get_version(session, model.id, version)
    if row is None or row.status != VersionStatus.READY:
        raise ModelVersionNotFound(f"model {name!r} has no ready version {version}")
    return snapshot(model, row)


def served(session: Session) -> list[ServedVersion]:
    """Every aliased READY version."""
    return [snapshot(m, v) for m, v in repository.served_versions(session)]


def describe(session: Session, name: str) -> dict[str, Any]:
    """A model with its versions and aliases, for GET /v1/models/{name}."""
    model = repository.get_model(session, name)
    if model is None:
        raise ModelNotFound(f"no model named {name!r}")
    return _describe(session, model)


def describe_all(session: Session) -> list[dict[str, Any]]:
    return [_describe(session, m) for m in repository.list_models(session)]


def _describe(session: Session, model: RegisteredModel) -> dict[str, Any]:
    versions = repository.list_versions(session, model.id)
    return {
        "name": model.name,
        "kind": model.kind,
        "description": model.description,
        "aliases": repository.list_aliases(session, model.id),
        "versions": [
            {
                "version": v.version,
                "status": v.status.value,
                "format": v.format,
                "sha256": v.sha256,
                "created_at": v.created_at.isoformat(),
                "signature": v.signature,
                "metrics": v.card.get("metrics", {}),
                "card": v.card,
            }
            for v in versions
        ],
    }
