"""API keys: `hm_<key id>_<secret>`, shown once, stored as the sha256 of the secret.

The secret is 32 random bytes, so a plain (unsalted, fast) hash is safe to store: there is
nothing to brute-force. Verification looks the row up by its public key id and compares the
hashes with `hmac.compare_digest` (constant time)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound
from app.registry.audit import audit
from app.registry.tables import ApiKey, utcnow

Scope = Literal["admin", "infer"]
SCOPES: tuple[str, ...] = ("admin", "infer")
PREFIX = "hm"


class KeyNotFound(NotFound):
    title, slug = "API key not found", "api-key-not-found"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a verified key's id and scope, and when the key expires (UTC)."""

    key_id: str
    scope: str
    expires_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(token: str) -> tuple[str, str] | None:
    parts = token.split("_")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def key_view(row: ApiKey) -> dict[str, Any]:
    return {
        "key_id": row.key_id,
        "scope": row.scope,
        "name": row.name,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


def create(
    session: Session,
    actor: str,
    scope: str,
    name: str = "",
    expires_in_s: int | None = None,
) -> dict[str, Any]:
    """A new key; the returned `key` is the only time the secret is seen."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32).replace("_", "-")
    expires = utcnow() + timedelta(seconds=expires_in_s) if expires_in_s else None
    row = ApiKey(key_id=key_id, key_hash=_hash(secret), scope=scope, name=name, expires_at=expires)
    session.add(row)
    session.flush()
    view = key_view(row)
    audit(session, actor, "key.create", key_id, None, view)
    return {**view, "key": f"{PREFIX}_{key_id}_{secret}"}


def verify(session: Session, token: str) -> Principal | str:
    """The key's principal, or why it was refused (a short reason, never the secret)."""
    parsed = parse(token)
    if parsed is None:
        return "malformed API key"
    key_id, secret = parsed
    row = session.scalars(select(ApiKey).where(ApiKey.key_id == key_id)).first()
    # compare even when the id is unknown, so timing does not tell which ids exist
    expected = row.key_hash if row is not None else _hash("")
    if not hmac.compare_digest(expected, _hash(secret)) or row is None:
        return "unknown API key"
    if row.revoked_at is not None:
        return "revoked API key"
    expires_at = _aware(row.expires_at) if row.expires_at is not None else None
    if expires_at is not None and expires_at <= datetime.now(UTC):
        return "expired API key"
    return Principal(row.key_id, row.scope, expires_at)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone


def list_keys(session: Session) -> list[dict[str, Any]]:
    return [key_view(r) for r in session.scalars(select(ApiKey).order_by(ApiKey.id)).all()]


def revoke(session: Session, actor: str, key_id: str) -> dict[str, Any]:
    row = session.scalars(select(ApiKey).where(ApiKey.key_id == key_id)).first()
    if row is None:
        raise KeyNotFound(f"no API key {key_id!r}")
    before = key_view(row)
    if row.revoked_at is None and row.scope == "admin" and count_admin(session) <= 1:
        raise Conflict(
            f"{key_id} is the last admin key: create another admin key before revoking it"
        )
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    after = key_view(row)
    audit(session, actor, "key.revoke", key_id, before, after)
    return after


def count_admin(session: Session) -> int:
    query = select(func.count()).where(ApiKey.scope == "admin", ApiKey.revoked_at.is_(None))
    return int(session.scalar(query) or 0)
