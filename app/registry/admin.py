"""Admin operations on the registry: one service layer under the `/admin` routes and the CLI.

Every function takes a Session (the caller owns the transaction) and the acting key id, and
records what it changed in the audit log in that same transaction, so an action and its
audit row commit or roll back together.

Alias moves are two-phase (the zero-downtime swap). A move is *requested*: the alias keeps
routing to what it routes now while every worker that serves the model loads and warms the
requested versions; the first worker that holds all of them *commits* the move, and only then
does the api route to it. A worker that cannot load a requested version *fails* the move: the
alias stays where it was and the error stays on the alias (and in its history). A new alias,
or a move with `immediate=True` (the CLI, `make up`), has nothing to protect and commits at
once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from app.errors import (
    AliasNotFound,
    Conflict,
    InvalidInput,
    ModelNotFound,
    ModelVersionNotFound,
)
from app.registry import repository
from app.registry.cards import Card
from app.registry.tables import (
    AliasEvent,
    AuditEvent,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    VersionStatus,
    utcnow,
)

MAX_TAGS = 32
MAX_PAGE = 200


def audit(
    session: Session,
    key_id: str,
    action: str,
    target: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    session.add(AuditEvent(key_id=key_id, action=action, target=target, before=before, after=after))


def _model(session: Session, name: str) -> RegisteredModel:
    model = repository.get_model(session, name)
    if model is None:
        raise ModelNotFound(f"no model named {name!r}")
    return model


def _version(session: Session, model: RegisteredModel, number: int) -> ModelVersion:
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
    total = session.scalar(select(func.count()).select_from(RegisteredModel)) or 0
    rows = session.scalars(
        select(RegisteredModel).order_by(RegisteredModel.name).limit(limit).offset(offset)
    ).all()
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
    model = _model(session, name)
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
    model = _model(session, name)
    aliases = repository.list_aliases(session, model.id)
    if aliases:
        raise Conflict(
            f"model {name!r} still has aliases {sorted(aliases)}; delete them first",
            aliases=sorted(aliases),
        )
    versions = repository.list_versions(session, model.id)
    uris = [v.artifact_uri for v in versions]
    before = model_view(model)
    session.execute(delete(AliasEvent).where(AliasEvent.model_id == model.id))
    for version in versions:
        session.delete(version)
    session.delete(model)
    session.flush()
    audit(session, key_id, "model.delete", name, before, None)
    return uris


# -- versions ----------------------------------------------------------------------------------


def add_version(session: Session, key_id: str, card: Card, artifact_root: str) -> dict[str, Any]:
    """A PENDING version of the card's model, numbered next, its artifact to be stored under
    `artifact_root` (a worker then loads and checks it, and marks it READY or FAILED). The
    row's unique (model, version) claims the number and the directory, so two concurrent
    uploads never write into the same place."""
    model = _model_of(session, card)
    number = repository.next_version_number(session, model.id)
    row = repository.add_version(
        session,
        ModelVersion(
            model_id=model.id,
            version=number,
            kind=card.kind,
            format=card.format,
            artifact_uri=f"{artifact_root.rstrip('/')}/{card.name}/{number}",
            sha256=card.digest(),
            signature=card.signature,
            card=card.model_dump(mode="json"),
            status=VersionStatus.PENDING,
            status_message="waiting for a worker to load and check the graph",
        ),
    )
    view = version_view(model, row)
    audit(session, key_id, "version.create", f"{card.name}:{number}", None, view)
    return view


def _model_of(session: Session, card: Card) -> RegisteredModel:
    """The card's model, refused (422) when the card says another kind."""
    model = _model(session, card.name)
    if model.kind != card.kind:
        raise InvalidInput(f"model {card.name!r} is a {model.kind}; the card says {card.kind}")
    return model


def find_version(session: Session, card: Card) -> int | None:
    """The version that already holds the card's files (same digest, not FAILED), if any."""
    row = repository.find_version_by_sha(session, _model_of(session, card).id, card.digest())
    return row.version if row else None


def reuse_version(session: Session, key_id: str, name: str, number: int) -> dict[str, Any]:
    """An upload of files a version already holds answers with that version: audit it."""
    model = _model(session, name)
    view = version_view(model, _version(session, model, number))
    audit(session, key_id, "version.reuse", f"{name}:{number}", None, view)
    return view


def discard_version(session: Session, key_id: str, name: str, number: int, reason: str) -> None:
    """Remove a version whose upload failed (no row is left behind)."""
    model = _model(session, name)
    row = repository.get_version(session, model.id, number)
    if row is not None and row.status == VersionStatus.PENDING:
        session.delete(row)
        session.flush()
        audit(session, key_id, "version.discard", f"{name}:{number}", None, {"reason": reason})


def get_version(session: Session, name: str, number: int) -> dict[str, Any]:
    model = _model(session, name)
    return version_view(model, _version(session, model, number))


def list_versions(session: Session, name: str) -> list[dict[str, Any]]:
    model = _model(session, name)
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


def pending_checks(session: Session) -> list[tuple[str, int, str]]:
    """(model, version, artifact uri) of every PENDING version."""
    query = (
        select(RegisteredModel.name, ModelVersion.version, ModelVersion.artifact_uri)
        .join(ModelVersion, ModelVersion.model_id == RegisteredModel.id)
        .where(ModelVersion.status == VersionStatus.PENDING)
    )
    return [(n, v, u) for n, v, u in session.execute(query).all()]


def _aliases_holding(session: Session, row: ModelVersion) -> list[str]:
    query = select(ModelAlias.alias).where(
        or_(
            ModelAlias.version_id == row.id,
            ModelAlias.canary_version_id == row.id,
            ModelAlias.pending_version_id == row.id,
            ModelAlias.pending_canary_version_id == row.id,
        )
    )
    return sorted(session.scalars(query).all())


def _unaliased(session: Session, name: str, number: int) -> tuple[RegisteredModel, ModelVersion]:
    """The model and version, refused (409) while any alias routes to or is moving to it."""
    model = _model(session, name)
    row = _version(session, model, number)
    held = _aliases_holding(session, row)
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
    """Delete an unaliased version; returns its artifact URI to remove after commit."""
    model, row = _unaliased(session, name, number)
    before = version_view(model, row)
    uri = row.artifact_uri
    shared = session.scalar(
        select(func.count()).where(ModelVersion.artifact_uri == uri, ModelVersion.id != row.id)
    )
    session.delete(row)
    session.flush()
    audit(session, key_id, "version.delete", f"{name}:{number}", before, None)
    return "" if shared else uri


# -- aliases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where an alias routes: a version, and optionally a canary taking `weight` of traffic."""

    version: int
    canary: int | None = None
    weight: float = 0.0

    def view(self) -> dict[str, Any]:
        return {"version": self.version, "canary": self.canary, "canary_weight": self.weight}


def _number(session: Session, version_id: int | None) -> int | None:
    if version_id is None:
        return None
    row = session.get(ModelVersion, version_id)
    return row.version if row else None


def _routed(session: Session, row: ModelAlias) -> Target:
    """What the alias routes to now."""
    canary = _number(session, row.canary_version_id)
    weight = row.canary_weight if row.canary_version_id is not None else 0.0
    return Target(_number(session, row.version_id) or 0, canary, weight)


def _pending(session: Session, row: ModelAlias) -> Target | None:
    """The requested move no worker has committed yet, if any."""
    if row.pending_version_id is None:
        return None
    canary = _number(session, row.pending_canary_version_id)
    weight = row.pending_canary_weight if row.pending_canary_version_id is not None else 0.0
    return Target(_number(session, row.pending_version_id) or 0, canary, weight)


def _clear_pending(row: ModelAlias) -> None:
    row.pending_version_id = row.pending_canary_version_id = None
    row.pending_canary_weight = 0.0
    row.pending_since = None


def alias_view(session: Session, model: RegisteredModel, row: ModelAlias) -> dict[str, Any]:
    routed, wanted = _routed(session, row), _pending(session, row)
    pending = None
    if wanted is not None:
        pending = {
            **wanted.view(),
            "since": row.pending_since.isoformat() if row.pending_since else None,
        }
    return {
        "model": model.name,
        "alias": row.alias,
        **routed.view(),
        "pending": pending,
        "state": "pending" if pending else ("failed" if row.last_error else "ready"),
        "last_error": row.last_error,
        "updated_at": row.updated_at.isoformat(),
    }


def _ready(session: Session, model: RegisteredModel, number: int) -> ModelVersion:
    row = _version(session, model, number)
    if row.status != VersionStatus.READY:
        raise Conflict(
            f"{model.name} v{number} is {row.status.value}, not READY"
            + (f": {row.status_message}" if row.status_message else "")
        )
    return row


def get_alias(session: Session, name: str, alias: str) -> dict[str, Any]:
    model = _model(session, name)
    row = repository.get_alias(session, model.id, alias)
    if row is None:
        raise AliasNotFound(f"model {name!r} has no alias {alias!r}")
    return alias_view(session, model, row)


def request_alias(
    session: Session,
    key_id: str,
    name: str,
    alias: str,
    target: Target,
    *,
    immediate: bool = False,
    action: str = "move",
) -> dict[str, Any]:
    """Set or move an alias (optionally with a canary). See the module docstring."""
    model = _model(session, name)
    if target.canary is not None:
        if not 0.0 < target.weight < 1.0:
            raise InvalidInput("a canary's weight must be between 0 and 1 (exclusive)")
        if target.canary == target.version:
            raise InvalidInput("the canary must be a different version from the main one")
    main = _ready(session, model, target.version)
    canary = _ready(session, model, target.canary) if target.canary is not None else None
    row = repository.get_alias(session, model.id, alias)  # locked FOR UPDATE on Postgres
    before = alias_view(session, model, row) if row else None
    if row is None:
        row = ModelAlias(model_id=model.id, alias=alias, version_id=main.id)
        session.add(row)
        immediate = True
    current = _routed(session, row)
    row.last_error = ""
    if before is not None and target == current and row.pending_version_id is None:
        immediate = True  # already routed there: nothing to load
    if immediate:
        _commit(row, main.id, canary.id if canary else None, target.weight)
        _clear_pending(row)
        event = "set" if before is None else action
    else:
        row.pending_version_id = main.id
        row.pending_canary_version_id = canary.id if canary else None
        row.pending_canary_weight = target.weight if canary else 0.0
        row.pending_since = utcnow()
        event = f"{action}-requested"
    row.updated_at = utcnow()
    session.flush()
    _event(session, model, alias, event, key_id, current if before else None, target)
    after = alias_view(session, model, row)
    audit(session, key_id, f"alias.{action}", f"{name}@{alias}", before, after)
    return after


def _commit(row: ModelAlias, version_id: int, canary_id: int | None, weight: float) -> None:
    row.version_id = version_id
    row.canary_version_id = canary_id
    row.canary_weight = weight if canary_id is not None else 0.0


def _event(
    session: Session,
    model: RegisteredModel,
    alias: str,
    action: str,
    actor: str,
    before: Target | None,
    after: Target | None,
    message: str = "",
) -> None:
    session.add(
        AliasEvent(
            model_id=model.id,
            alias=alias,
            action=action,
            actor=actor,
            from_version=before.version if before else None,
            from_canary_version=before.canary if before else None,
            from_canary_weight=before.weight if before and before.canary else None,
            to_version=after.version if after else None,
            canary_version=after.canary if after else None,
            canary_weight=after.weight if after and after.canary else None,
            message=message,
        )
    )
    session.flush()


@dataclass(frozen=True)
class PendingMove:
    alias_id: int
    model: str
    alias: str
    versions: tuple[int, ...]  # every version the move needs loaded
    version_id: int
    canary_id: int | None


def pending_moves(session: Session) -> list[PendingMove]:
    query = (
        select(ModelAlias, RegisteredModel.name)
        .join(RegisteredModel, RegisteredModel.id == ModelAlias.model_id)
        .where(ModelAlias.pending_version_id.is_not(None))
    )
    out = []
    for row, name in session.execute(query).all():
        assert row.pending_version_id is not None
        numbers = [_number(session, row.pending_version_id)]
        if row.pending_canary_version_id is not None:
            numbers.append(_number(session, row.pending_canary_version_id))
        out.append(
            PendingMove(
                row.id,
                name,
                row.alias,
                tuple(n for n in numbers if n is not None),
                row.pending_version_id,
                row.pending_canary_version_id,
            )
        )
    return out


def settle_move(session: Session, move: PendingMove, actor: str, error: str = "") -> bool:
    """Commit a pending move (error == "") or fail it; False when it changed meanwhile."""
    row = session.get(ModelAlias, move.alias_id, with_for_update=True)
    if (
        row is None
        or row.pending_version_id != move.version_id
        or row.pending_canary_version_id != move.canary_id
    ):
        return False
    model = session.get(RegisteredModel, row.model_id)
    assert model is not None
    before = alias_view(session, model, row)
    current, wanted = _routed(session, row), _pending(session, row)
    assert wanted is not None  # checked above: the move is still the pending one
    if error:
        row.last_error = error
        action = "failed"
    else:
        _commit(row, row.pending_version_id, row.pending_canary_version_id, wanted.weight)
        row.last_error = ""
        action = "moved"
    _clear_pending(row)
    row.updated_at = utcnow()
    session.flush()
    _event(session, model, row.alias, action, actor, current, wanted, error)
    audit(
        session, actor, f"alias.{action}", f"{model.name}@{row.alias}", before,
        alias_view(session, model, row),
    )  # fmt: skip
    return True


def delete_alias(session: Session, key_id: str, name: str, alias: str) -> None:
    model = _model(session, name)
    row = repository.get_alias(session, model.id, alias)
    if row is None:
        raise AliasNotFound(f"model {name!r} has no alias {alias!r}")
    before = alias_view(session, model, row)
    current = _routed(session, row)
    session.delete(row)
    session.flush()
    _event(session, model, alias, "deleted", key_id, current, None)
    audit(session, key_id, "alias.delete", f"{name}@{alias}", before, None)


def event_view(event: AliasEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "alias": event.alias,
        "action": event.action,
        "actor": event.actor,
        "from": {
            "version": event.from_version,
            "canary": event.from_canary_version,
            "canary_weight": event.from_canary_weight,
        },
        "to": {
            "version": event.to_version,
            "canary": event.canary_version,
            "canary_weight": event.canary_weight,
        },
        "message": event.message,
        "at": event.created_at.isoformat(),
    }


def _events(session: Session, model: RegisteredModel, alias: str) -> Sequence[AliasEvent]:
    query = (
        select(AliasEvent)
        .where(AliasEvent.model_id == model.id, AliasEvent.alias == alias)
        .order_by(AliasEvent.id)
    )
    return session.scalars(query).all()


def alias_history(session: Session, name: str, alias: str) -> list[dict[str, Any]]:
    model = _model(session, name)
    events = _events(session, model, alias)
    if not events and repository.get_alias(session, model.id, alias) is None:
        raise AliasNotFound(f"model {name!r} has no alias {alias!r}")
    return [event_view(e) for e in events]


COMMITTED = ("set", "move", "moved", "rollback", "canary")


def rollback(
    session: Session, key_id: str, name: str, alias: str, *, immediate: bool = False
) -> dict[str, Any]:
    """Move the alias back to what it held before its last committed move."""
    model = _model(session, name)
    if repository.get_alias(session, model.id, alias) is None:
        raise AliasNotFound(f"model {name!r} has no alias {alias!r}")
    last = next(
        (e for e in reversed(_events(session, model, alias)) if e.action in COMMITTED), None
    )
    if last is None or last.from_version is None:
        raise Conflict(f"{name}@{alias} has no earlier version to roll back to")
    target = Target(
        last.from_version,
        last.from_canary_version,
        last.from_canary_weight or 0.0,
    )
    return request_alias(
        session, key_id, name, alias, target, immediate=immediate, action="rollback"
    )


def audit_log(
    session: Session, limit: int, before_id: int | None, action: str | None
) -> dict[str, Any]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    if action:
        query = query.where(AuditEvent.action == action)
    rows = session.scalars(query).all()
    return {
        "events": [
            {
                "id": r.id,
                "key_id": r.key_id,
                "action": r.action,
                "target": r.target,
                "before": r.before,
                "after": r.after,
                "at": r.created_at.isoformat(),
            }
            for r in rows
        ],
        "next_before": rows[-1].id if len(rows) == limit else None,
    }
