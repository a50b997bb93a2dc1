"""Admin operations on aliases: set, move, canary, history, rollback, delete.

Alias moves are two-phase (the zero-downtime swap). A move is *requested*: the alias keeps
routing to what it routes now while every worker that serves the model loads and warms the
requested versions; the first worker that holds all of them *commits* the move, and only then
does the api route to it. A worker that cannot load a requested version *fails* the move: the
alias stays where it was and the error stays on the alias (and in its history). A new alias,
or a move with `immediate=True` (the CLI, `make up`), has nothing to protect and commits at
once. Every change is audited in its transaction (app.registry.audit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.errors import AliasNotFound, Conflict, InvalidInput
from app.registry import repository
from app.registry.audit import audit
from app.registry.tables import (
    AliasEvent,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    VersionStatus,
    utcnow,
)
from app.registry.versions import model_named, version_of

COMMITTED = ("set", "move", "moved", "rollback", "canary")


@dataclass(frozen=True)
class Target:
    """Where an alias routes: a version, and optionally a canary taking `weight` of traffic."""

    version: int
    canary: int | None = None
    weight: float = 0.0

    def view(self) -> dict[str, Any]:
        return {"version": self.version, "canary": self.canary, "canary_weight": self.weight}


@dataclass(frozen=True)
class PendingMove:
    alias_id: int
    model: str
    alias: str
    versions: tuple[int, ...]  # every version the move needs loaded
    version_id: int
    canary_id: int | None


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
    row = version_of(session, model, number)
    if row.status != VersionStatus.READY:
        raise Conflict(
            f"{model.name} v{number} is {row.status.value}, not READY"
            + (f": {row.status_message}" if row.status_message else "")
        )
    return row


def _alias_row(session: Session, model: RegisteredModel, alias: str) -> ModelAlias:
    row = repository.get_alias(session, model.id, alias)
    if row is None:
        raise AliasNotFound(f"model {model.name!r} has no alias {alias!r}")
    return row


def get_alias(session: Session, name: str, alias: str) -> dict[str, Any]:
    model = model_named(session, name)
    return alias_view(session, model, _alias_row(session, model, alias))


def _checked_canary(target: Target) -> None:
    if target.canary is None:
        return
    if not 0.0 < target.weight < 1.0:
        raise InvalidInput("a canary's weight must be between 0 and 1 (exclusive)")
    if target.canary == target.version:
        raise InvalidInput("the canary must be a different version from the main one")


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
    model = model_named(session, name)
    _checked_canary(target)
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


def pending_moves(session: Session) -> list[PendingMove]:
    """Every requested move no worker has committed or failed yet."""
    out = []
    for row, name in repository.pending_alias_rows(session):
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
    model = model_named(session, name)
    row = _alias_row(session, model, alias)
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


def alias_history(session: Session, name: str, alias: str) -> list[dict[str, Any]]:
    model = model_named(session, name)
    events = repository.alias_events(session, model.id, alias)
    if not events and repository.get_alias(session, model.id, alias) is None:
        raise AliasNotFound(f"model {name!r} has no alias {alias!r}")
    return [event_view(e) for e in events]


def rollback(
    session: Session, key_id: str, name: str, alias: str, *, immediate: bool = False
) -> dict[str, Any]:
    """Move the alias back to what it held before its last committed move."""
    model = model_named(session, name)
    _alias_row(session, model, alias)
    events = repository.alias_events(session, model.id, alias)
    last = next((e for e in reversed(events) if e.action in COMMITTED), None)
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
