"""Admin operations on models and their versions. Every function takes a Session (the caller
owns the transaction) and, when it changes something, the acting key id: the change is
audited in that same transaction (app.registry.audit).

An uploaded version is PENDING until a worker has loaded and checked it in a process of its
own (app.runtime.check_process), then READY or FAILED (`finish_check`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, ModelNotFound, ModelVersionNotFound
from app.registry import artifacts, repository
from app.registry.audit import audit
from app.registry.cards import Card
from app.registry.tables import ModelVersion, RegisteredModel, VersionStatus, utcnow


def model_named(session: Session, name: str) -> RegisteredModel:
    """The model, or ModelNotFound (404)."""
    model = repository.get_model(session, name)
    if model is None:
        raise ModelNotFound(f"no model named {name!r}")
    return model


def version_of(session: Session, model: RegisteredModel, number: int) -> ModelVersion:
    """The model's version, or ModelVersionNotFound (404)."""
    row = repository.get_version(session, model.id, number)
    if row is None:
        raise ModelVersionNotFound(f"model {model.name!r} has no version {number}")
    return row


def model_view(model: RegisteredModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "kind": model.kind,
        "description": model.description,
        "tags": model.tags or {},
        "created_at": model.created_at.isoformat(),
        "updated_at": model.updated_at.isoformat(),
    }


def version_view(model: RegisteredModel, row: ModelVersion) -> dict[str, Any]:
    return {
        "model": model.name,
        "version": row.version,
        "kind": row.kind,
        "format": row.format,
        "status": row.status.value,
        "status_message": row.status_message,
        "sha256": row.sha256,
        "artifact_uri": row.artifact_uri,
        "created_at": row.created_at.isoformat(),
        "metrics": row.card.get("metrics", {}),
    }


# -- models ------------------------------------------------------------------------------------


def create_model(
    session: Session, key_id: str, name: str, kind: str, description: str, tags: dict[str, str]
) -> dict[str, Any]:
    if repository.get_model(session, name) is not None:
        raise Conflict(f"a model named {name!r} exists")
    model = repository.create_model(session, name, kind, description)
    model.tags = dict(tags)
    session.flush()
    view = model_view(model)
    audit(session, key_id, "model.create", name, None, view)
    return view


def list_models(session: Session, limit: int, offset: int) -> dict[str, Any]:
    total, rows = repository.page_models(session, limit, offset)
    items = []
    for model in rows:
        view = model_view(model)
        view["aliases"] = repository.list_aliases(session, model.id)
        view["versions"] = len(repository.list_versions(session, model.id))
        items.append(view)
    following = offset + len(rows)
    more = following < total
    return {"models": items, "total": total, "next_offset": following if more else None}


def update_model(
    session: Session,
    key_id: str,
    name: str,
    description: str | None,
    tags: dict[str, str] | None,
) -> dict[str, Any]:
    model = model_named(session, name)
    before = model_view(model)
    if description is not None:
        model.description = description
    if tags is not None:
        model.tags = dict(tags)
    model.updated_at = utcnow()
    session.flush()
    after = model_view(model)
    audit(session, key_id, "model.update", name, before, after)
    return after


def delete_model(session: Session, key_id: str, name: str) -> list[str]:
    """Delete a model with no alias; returns the artifact URIs to remove after commit."""
    model = model_named(session, name)
    aliases = repository.list_aliases(session, model.id)
    if aliases:
        raise Conflict(
            f"model {name!r} still has aliases {sorted(aliases)}; delete them first",
            aliases=sorted(aliases),
        )
    versions = repository.list_versions(session, model.id)
    uris = [v.artifact_uri for v in versions]
    before = model_view(model)
    repository.delete_alias_events(session, model.id)
    for version in versions:
        session.delete(version)
    session.delete(model)
    session.flush()
    audit(session, key_id, "model.delete", name, before, None)
    return uris


# -- versions ----------------------------------------------------------------------------------


def add_version(session: Session, key_id: str, card: Card) -> dict[str, Any]:
    """A PENDING version of the card's model, numbered next, its artifact to be stored at
    `name/number` under the artifact root (recorded relative to it: each process resolves it
    against its own root, app.registry.artifacts.located); a worker then loads and checks it,
    and marks it READY or FAILED. The row's unique (model, version) claims the number and the
    directory, so two concurrent uploads never write into the same place."""
    model = _model_of(session, card)
    number = repository.next_version_number(session, model.id)
    row = repository.add_card_version(
        session,
        model.id,
        number,
        card,
        artifacts.relative_uri(card, number),
        VersionStatus.PENDING,
        "waiting for a worker to load and check the graph",
    )
    view = version_view(model, row)
    audit(session, key_id, "version.create", f"{card.name}:{number}", None, view)
    return view


def _model_of(session: Session, card: Card) -> RegisteredModel:
    """The card's model, refused (422) when the card says another kind."""
    model = model_named(session, card.name)
    if model.kind != card.kind:
        raise InvalidInput(f"model {card.name!r} is a {model.kind}; the card says {card.kind}")
    return model


def find_version(session: Session, card: Card) -> int | None:
    """The version that already holds the card's files (same digest, not FAILED), if any."""
    row = repository.find_version_by_sha(session, _model_of(session, card).id, card.digest())
    return row.version if row else None


def reuse_version(session: Session, key_id: str, name: str, number: int) -> dict[str, Any]:
    """An upload of files a version already holds answers with that version: audit it."""
    model = model_named(session, name)
    view = version_view(model, version_of(session, model, number))
    audit(session, key_id, "version.reuse", f"{name}:{number}", None, view)
    return view


def discard_version(session: Session, key_id: str, name: str, number: int, reason: str) -> None:
    """Remove a version whose upload failed (no row is left behind)."""
    model = model_named(session, name)
    row = repository.get_version(session, model.id, number)
    if row is not None and row.status == VersionStatus.PENDING:
        session.delete(row)
        session.flush()
        audit(session, key_id, "version.discard", f"{name}:{number}", None, {"reason": reason})


def get_version(session: Session, name: str, number: int) -> dict[str, Any]:
    model = model_named(session, name)
    return version_view(model, version_of(session, model, number))


def list_versions(session: Session, name: str) -> list[dict[str, Any]]:
    model = model_named(session, name)
    return [version_view(model, v) for v in repository.list_versions(session, model.id)]


def finish_check(session: Session, name: str, number: int, ok: bool, message: str) -> bool:
    """Record a worker's check of a PENDING version; False when it is no longer pending."""
    model = repository.get_model(session, name)
    row = repository.get_version(session, model.id, number) if model else None
    if row is None or row.status != VersionStatus.PENDING:
        return False
    before = row.status.value
    row.status = VersionStatus.READY if ok else VersionStatus.FAILED
    row.status_message = message
    session.flush()
    audit(
        session,
        "worker",
        "version.check",
        f"{name}:{number}",
        {"status": before},
        {"status": row.status.value, "message": message},
    )
    return True


def _unaliased(session: Session, name: str, number: int) -> tuple[RegisteredModel, ModelVersion]:
    """The model and version, refused (409) while any alias routes to or is moving to it."""
    model = model_named(session, name)
    row = version_of(session, model, number)
    held = repository.aliases_holding(session, row.id)
    if held:
        raise Conflict(f"{name} v{number} is aliased ({', '.join(held)}); move them first")
    return model, row


def archive_version(session: Session, key_id: str, name: str, number: int) -> dict[str, Any]:
    model, row = _unaliased(session, name, number)
    before = version_view(model, row)
    row.status = VersionStatus.ARCHIVED
    row.status_message = "archived"
    session.flush()
    after = version_view(model, row)
    audit(session, key_id, "version.archive", f"{name}:{number}", before, after)
    return after


def delete_version(session: Session, key_id: str, name: str, number: int) -> str:
    """Delete an unaliased version; returns its artifact URI to remove after commit ("" when
    another version shares its directory)."""
    model, row = _unaliased(session, name, number)
    before = version_view(model, row)
    uri = row.artifact_uri
    shared = repository.count_sharing_artifact(session, uri, row.id)
    session.delete(row)
    session.flush()
    audit(session, key_id, "version.delete", f"{name}:{number}", before, None)
    return "" if shared else uri
