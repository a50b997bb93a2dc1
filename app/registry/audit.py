"""The audit log: every admin change writes one row in the transaction that makes it, so an
action and its audit row commit or roll back together."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.registry.tables import AuditEvent

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


def audit_log(
    session: Session, limit: int, before_id: int | None, action: str | None
) -> dict[str, Any]:
    """Admin actions, newest first, a page of `limit` before `before_id`."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    if action:
        query = query.where(AuditEvent.action == action)
    rows = session.scalars(query).all()
    return {
        "events": [_event_view(r) for r in rows],
        "next_before": rows[-1].id if len(rows) == limit else None,
    }


def _event_view(row: AuditEvent) -> dict[str, Any]:
    return {
        "id": row.id,
        "key_id": row.key_id,
        "action": row.action,
        "target": row.target,
        "before": row.before,
        "after": row.after,
        "at": row.created_at.isoformat(),
    }
