"""The registry as the command line and `hanmo up` use it: one transaction against the
configured database, and the first admin key. (Registering model directories, which checks
them with the runtime, is app.services.registration.)"""

from __future__ import annotations

from typing import Any

from app.registry import apikeys
from app.registry.db import make_engine, make_sessionmaker
from app.settings import Settings


def in_transaction(settings: Settings, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Run a registry service function in one transaction against the configured database."""
    engine = make_engine(settings.resolved_database_url())
    try:
        with make_sessionmaker(engine).begin() as session:
            return fn(session, *args, **kwargs)
    finally:
        engine.dispose()


def bootstrap_admin_key(settings: Settings) -> str | None:
    """On first start (no admin key yet), create one and return its secret to print once."""

    def create_first(session: Any) -> str | None:
        if apikeys.count_admin(session) > 0:
            return None
        return str(apikeys.create(session, "bootstrap", "admin", "bootstrap (hanmo up)")["key"])

    key: str | None = in_transaction(settings, create_first)
    return key
