"""Registry operations over the repository: register a model directory, resolve aliases."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hanmo_client.schemas import DEFAULT_ALIAS
from sqlalchemy.orm import Session, sessionmaker

from app.errors import (
    AliasNotFound,
    Conflict,
    ModelNotFound,
    ModelVersionNotFound,
)
from app.registry import aliases, artifacts, repository
from app.registry.cards import Card, parse_card, read_card
from app.registry.tables import ModelVersion, RegisteredModel, VersionStatus
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class ServedVersion:
    """A snapshot of one READY model version: what the api routes to and a worker loads."""

    model: str
    version: int
    kind: str
    format: str
    sha256: str
    artifact_uri: str  # as the registry stores it: relative to the artifact root, or absolute
    card: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.model}:{self.version}"

    def parsed_card(self) -> Card:
        return parse_card(self.card)


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
    settings: Settings,
    check: Callable[[Path, Card], None],
    alias: str | None = None,
    actor: str = "cli",
) -> ServedVersion:
    """Verify checksums and the kind's contract, store the artifact under `settings`' artifact
    root (recorded relative to it), add a READY version and optionally point an alias at it.
    Registering the same bytes again reuses their version."""
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
            uri = artifacts.store(directory, card, settings, number)
            version = repository.add_card_version(
                session, model.id, number, card, uri, VersionStatus.READY
            )
        if alias and repository.list_aliases(session, model.id).get(alias) != version.version:
            aliases.request_alias(
                session, actor, model.name, alias, aliases.Target(version.version), immediate=True
            )
        return snapshot(model, version)


def alias_unless_set(session: Session, actor: str, name: str, alias: str, version: int) -> int:
    """Point `alias` at `version` only if the model has no such alias yet, and return the
    version it points at: a restart must never move back an alias a person moved."""
    model = repository.get_model(session, name)
    if model is None:
        raise ModelNotFound(f"no model named {name!r}")
    held = repository.list_aliases(session, model.id).get(alias)
    if held is not None:
        return held
    aliases.request_alias(session, actor, name, alias, aliases.Target(version), immediate=True)
    return version


def resolve(session: Session, name: str, alias: str | None, version: int | None) -> ServedVersion:
    """The READY version a request names, by explicit version or by alias."""
    model = repository.get_model(session, name)
    if model is None:
        raise ModelNotFound(f"no model named {name!r}")
    if version is None:
        number = repository.list_aliases(session, model.id).get(alias or DEFAULT_ALIAS)
        if number is None:
            raise AliasNotFound(f"model {name!r} has no alias {alias or 'production'!r}")
        version = number
    row = repository.get_version(session, model.id, version)
    if row is None or row.status != VersionStatus.READY:
        raise ModelVersionNotFound(f"model {name!r} has no ready version {version}")
    return snapshot(model, row)


def served(session: Session, include_pending: bool = True) -> list[ServedVersion]:
    """Every READY version an alias routes to, plus (by default) those a pending move needs."""
    return [snapshot(m, v) for m, v in repository.served_versions(session, include_pending)]


@dataclass(frozen=True, slots=True)
class Route:
    """Where an alias sends a request: `main`, or `canary` for a `weight` share of keys."""

    main: ServedVersion
    canary: ServedVersion | None = None
    weight: float = 0.0
    # a pinned version no alias holds (nor a requested move needs): workers load it on
    # demand, once the api records that a request wants it (app/worker/pinned.py)
    unaliased: bool = False

    def pick(self, key: str | None) -> ServedVersion:
        """Sticky by key (a seed or a routing key): the same key always gets the same version;
        without one, a random share goes to the canary."""
        if self.canary is None or self.weight <= 0:
            return self.main
        if key is None:
            point = secrets.randbelow(1 << 32) / (1 << 32)
        else:
            digest = hashlib.sha256(f"{self.main.model}\0{key}".encode()).digest()
            point = int.from_bytes(digest[:4], "big") / (1 << 32)
        return self.canary if point < self.weight else self.main


def route(session: Session, name: str, alias: str | None, version: int | None) -> Route:
    """The versions a request may go to: a pinned version (bypassing any canary split), or
    what the alias routes to now (a requested move is not routed until a worker commits it)."""
    if version is not None:
        pinned = resolve(session, name, None, version)
        held = {(m.name, v.version) for m, v in repository.served_versions(session)}
        return Route(pinned, unaliased=(name, version) not in held)
    model = repository.get_model(session, name)
    if model is None:
        raise ModelNotFound(f"no model named {name!r}")
    alias = alias or DEFAULT_ALIAS
    row = repository.get_alias_row(session, model.id, alias)
    if row is None:
        raise AliasNotFound(f"model {name!r} has no alias {alias!r}")
    main = session.get(ModelVersion, row.version_id)
    if main is None or main.status != VersionStatus.READY:
        raise ModelVersionNotFound(f"{name}@{alias} routes to no ready version")
    canary = None
    if row.canary_version_id is not None:
        found = session.get(ModelVersion, row.canary_version_id)
        if found is not None and found.status == VersionStatus.READY:
            canary = snapshot(model, found)
    return Route(snapshot(model, main), canary, row.canary_weight if canary else 0.0)


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
