"""The registry as the command line and `hanmo up` use it: one transaction against the
configured database, registering a model directory, the shipped model repository (register
every version, alias only what has no alias yet), and the first admin key."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.registry import apikeys, service
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


def register_directory(
    settings: Settings, directory: Path, alias: str | None
) -> service.ServedVersion:
    """Check and register one model directory (the CLI, `hanmo up` and tests share this)."""
    from app.runtime.models import check_artifact

    engine = make_engine(settings.resolved_database_url())
    try:
        return service.register_directory(
            make_sessionmaker(engine),
            directory,
            settings.resolved_artifact_root(),
            check_artifact,
            alias=alias,
        )
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


def shipped_model_dirs(models_dir: Path) -> list[list[Path]]:
    """models/<name>/<version>/card.json grouped by model, oldest version first."""
    dirs = sorted(
        (card.parent for card in models_dir.glob("*/*/card.json")),
        key=lambda d: (d.parent.name, int(d.name) if d.name.isdigit() else 0),
    )
    return [list(group) for _, group in itertools.groupby(dirs, key=lambda d: d.parent)]


def register_shipped(
    settings: Settings, models_dir: Path, say: Callable[[str], None], alias: str = "production"
) -> None:
    """Register every shipped version, oldest first, and point `alias` at each model's newest
    only where the model has no such alias yet: an alias a person moved (PUT, promote,
    rollback) stays where they put it on every restart. `say` gets a line per step."""

    if not models_dir.is_dir():
        say(f"no model repository at {models_dir.resolve()}: none registered")
    for versions in shipped_model_dirs(models_dir):
        registered = [register_directory(settings, directory, None) for directory in versions]
        for served in registered:
            say(f"model {served.model} v{served.version} registered")
        name, newest = registered[-1].model, registered[-1].version
        held = in_transaction(settings, service.alias_unless_set, "cli", name, alias, newest)
        say(
            f"model {name}: {alias} at v{newest}"
            if held == newest
            else f"model {name}: {alias} stays at v{held} (already set, maybe by a person; "
            f"shipped newest is v{newest}, `hanmo models promote {name} {newest}` moves it)"
        )
