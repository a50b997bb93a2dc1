"""Alias moves through the admin API: request the move (app.registry.aliases), tell the
workers, and wait up to `wait_s` for one of them to commit or fail it."""

from __future__ import annotations

from typing import Any

from app.errors import Conflict
from app.registry import aliases
from app.services.backends import Backends, announce_change, poll, transact


async def move(
    backends: Backends,
    key_id: str,
    name: str,
    alias: str,
    target: aliases.Target,
    wait_s: float,
) -> dict[str, Any]:
    """Set or move an alias (with a canary when the target has one); see `settled`."""
    action = "canary" if target.canary is not None else "move"
    view = await transact(
        backends.sessions, aliases.request_alias, key_id, name, alias, target, action=action
    )
    await announce_change(backends.redis)
    return await settled(backends, name, alias, view, wait_s)


async def rollback(
    backends: Backends, key_id: str, name: str, alias: str, wait_s: float
) -> dict[str, Any]:
    """Move the alias back to what it held before its last move (the same swap as `move`)."""
    view = await transact(backends.sessions, aliases.rollback, key_id, name, alias)
    await announce_change(backends.redis)
    return await settled(backends, name, alias, view, wait_s)


async def settled(
    backends: Backends, name: str, alias: str, view: dict[str, Any], wait_s: float
) -> dict[str, Any]:
    """The alias once a worker committed the move, or still pending after `wait_s`; a
    Conflict (409) when a worker failed it (the alias routes where it did)."""
    view = await poll(backends.sessions, wait_s, lambda v: v["state"] != "pending", view,
                      aliases.get_alias, name, alias)  # fmt: skip
    if view["state"] == "failed":
        raise Conflict(
            f"the move of {name}@{alias} failed; it still routes to v{view['version']}: "
            f"{view['last_error']}",
            alias=view,
        )
    return view


async def delete(backends: Backends, key_id: str, name: str, alias: str) -> None:
    await transact(backends.sessions, aliases.delete_alias, key_id, name, alias)
    await announce_change(backends.redis)
