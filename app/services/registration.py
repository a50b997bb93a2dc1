"""Registering model directories as the command line, `hanmo up` and tests do: each one
checked on CPU (every file's sha256, the kind's contract, runs on random inputs; every
problem listed at once), stored and added READY; the shipped model repository registered
with an alias only where a model has none yet."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

from hanmo_client.schemas import DEFAULT_ALIAS

from app.registry import service
from app.registry.db import make_engine, make_sessionmaker
from app.registry.local import in_transaction
from app.runtime.models import check_artifact
from app.settings import Settings

SHIPPED_ALIAS = DEFAULT_ALIAS  # the shipped models are served as any request finds them


def register_directory(
    settings: Settings, directory: Path, alias: str | None
) -> service.ServedVersion:
    """Check and register one model directory (the same bytes again reuse their version)."""
    engine = make_engine(settings.resolved_database_url())
    try:
        return service.register_directory(
            make_sessionmaker(engine),
            directory,
            settings,
            check_artifact,
            alias=alias,
        )
    finally:
        engine.dispose()


def shipped_model_dirs(models_dir: Path) -> list[list[Path]]:
    """models/<name>/<version>/card.json grouped by model, oldest version first."""
    dirs = sorted(
        (card.parent for card in models_dir.glob("*/*/card.json")),
        key=lambda d: (d.parent.name, int(d.name) if d.name.isdigit() else 0),
    )
    return [list(group) for _, group in itertools.groupby(dirs, key=lambda d: d.parent)]


def register_shipped(
    settings: Settings,
    models_dir: Path,
    say: Callable[[str], None],
    alias: str = SHIPPED_ALIAS,
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
