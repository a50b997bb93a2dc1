"""Adding, checking and removing model versions through the admin API. A new version's files
come from an upload or a URI (app.registry.ingest); its row claims the number first, its files
are stored with every sha256 checked, then a worker checks it in a process of its own (the
`hanmo:checks` stream) and marks it READY or FAILED. The same files as a version the model
already has answer with that version, storing nothing (as `hanmo models register` does)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any

import anyio
from redis.asyncio import Redis
from sqlalchemy.orm import Session

from app.errors import ArtifactCorrupt, Conflict, ContractViolation, InvalidInput
from app.queue import keys
from app.queue.errors import REDIS_ERRORS
from app.registry import artifacts, ingest, service, versions
from app.registry.aliases import get_alias
from app.registry.cards import Card
from app.services.backends import Backends, announce_change, poll, transact
from app.settings import Settings

CHECKS_MAXLEN = 100_000


@dataclass(frozen=True)
class Source:
    """A new version's card, the digest the request expects, and where its files are read."""

    card: Card
    expected: str | None
    open: ingest.Opener


class Outcome(StrEnum):
    REUSED = "reused"  # the same files as a version the model has: that version
    READY = "ready"  # stored and checked within the wait
    PENDING = "pending"  # stored; its check is still running (or could not be queued)


@dataclass(frozen=True)
class Added:
    outcome: Outcome
    view: dict[str, Any]


def from_upload(
    card_bytes: bytes, parts: Sequence[tuple[str, IO[bytes]]], sha256: str | None
) -> Source:
    """An upload's card, its file parts (by file name) and the digest it expects."""
    card = ingest.card_from_bytes(card_bytes)
    open_source = ingest.uploaded(card, parts)
    return Source(card, ingest.expected_digest(sha256), open_source)


async def from_uri(settings: Settings, uri: str, sha256: str | None) -> Source:
    """A directory named by URI inside a register root: its card and its files."""

    def resolve() -> Source:
        allowed = ingest.allowed_uri(uri, settings.resolved_register_roots())
        card = ingest.remote_card(allowed, settings)
        return Source(card, sha256, ingest.remote(allowed, settings))

    return await anyio.to_thread.run_sync(resolve)


async def add(backends: Backends, key_id: str, name: str, source: Source, wait_s: float) -> Added:
    """Add a version of `name` from `source` and wait up to `wait_s` for its check; a
    ContractViolation (422) when the check failed it (its files are removed)."""
    card = source.card
    if card.name != name:
        raise InvalidInput(f"the card names model {card.name!r}, not {name!r}")
    digest = card.digest()
    if source.expected is not None and source.expected != digest:
        raise ArtifactCorrupt(
            f"the version's sha256 is {digest}; the request says {source.expected}"
        )
    reused = await _reuse(backends, key_id, source)
    if reused is not None:
        return Added(Outcome.REUSED, shown(backends.settings, reused))
    view = await _store(backends, key_id, source)
    number = view["version"]
    try:
        await queue_check(backends.redis, name, number, view["artifact_uri"])
    except REDIS_ERRORS:
        view["status_message"] = "queueing its check failed (Redis away): POST …/check"
        return Added(Outcome.PENDING, shown(backends.settings, view))
    view = await poll(backends.sessions, wait_s, lambda v: v["status"] != "PENDING", view,
                      versions.get_version, name, number)  # fmt: skip
    view = shown(backends.settings, view)
    if view["status"] == "FAILED":
        raise ContractViolation(
            f"{name} v{number} failed its check: {view['status_message']}", version=view
        )
    return Added(Outcome.READY if view["status"] == "READY" else Outcome.PENDING, view)


async def _reuse(backends: Backends, key_id: str, source: Source) -> dict[str, Any] | None:
    """The version that holds the same files (their bytes checked against the card, stored
    nowhere), audited as reused; None when the model has no such version."""
    number = await transact(backends.sessions, versions.find_version, source.card)
    if number is None:
        return None
    await anyio.to_thread.run_sync(ingest.check_only, source.card, source.open)
    return await transact(
        backends.sessions, versions.reuse_version, key_id, source.card.name, number
    )


async def _store(backends: Backends, key_id: str, source: Source) -> dict[str, Any]:
    """The PENDING row first (it claims the version number and the artifact's directory),
    then the files; a failed copy removes both."""
    settings = backends.settings
    view = await transact(backends.sessions, versions.add_version, key_id, source.card)
    uri = view["artifact_uri"]
    try:
        await anyio.to_thread.run_sync(
            ingest.store_checked, uri, source.card, source.open, settings
        )
    except BaseException as exc:
        await anyio.to_thread.run_sync(artifacts.remove, uri, settings)
        await transact(
            backends.sessions, versions.discard_version, key_id, source.card.name,
            view["version"], str(exc)[:500],
        )  # fmt: skip
        raise
    return view


async def queue_check(redis: Redis, name: str, version: int, uri: str) -> None:
    """Ask the workers to load and check a PENDING version (the `hanmo:checks` stream). The
    URI is the stored one: each worker resolves it against its own artifact root."""
    fields = {"model": name, "version": version, "uri": uri}
    await redis.xadd(keys.CHECKS, fields, maxlen=CHECKS_MAXLEN)  # type: ignore[arg-type]


async def recheck(backends: Backends, name: str, number: int) -> dict[str, Any]:
    """Queue the check of a PENDING version again (its first check was lost)."""
    view = await transact(backends.sessions, versions.get_version, name, number)
    if view["status"] != "PENDING":
        raise Conflict(f"{name} v{number} is {view['status']}, not PENDING")
    await queue_check(backends.redis, name, number, view["artifact_uri"])
    return shown(backends.settings, view)


async def archive(backends: Backends, key_id: str, name: str, number: int) -> dict[str, Any]:
    view = await transact(backends.sessions, versions.archive_version, key_id, name, number)
    await announce_change(backends.redis)
    return shown(backends.settings, view)


async def get_version(backends: Backends, name: str, number: int) -> dict[str, Any]:
    view = await transact(backends.sessions, versions.get_version, name, number)
    return shown(backends.settings, view)


async def list_versions(backends: Backends, name: str) -> list[dict[str, Any]]:
    views = await transact(backends.sessions, versions.list_versions, name)
    return [shown(backends.settings, view) for view in views]


def shown(settings: Settings, view: dict[str, Any]) -> dict[str, Any]:
    """A version as the admin API shows it: `artifact_uri` where its files are for this api
    (the registry records it relative to the artifact root; app.registry.artifacts.located)."""
    return {**view, "artifact_uri": artifacts.located(view["artifact_uri"], settings)}


async def delete(backends: Backends, key_id: str, name: str, number: int) -> None:
    """Delete an unaliased version, then its artifact."""
    uri = await transact(backends.sessions, versions.delete_version, key_id, name, number)
    await _remove_artifacts(backends, [uri])
    await announce_change(backends.redis)


async def delete_model(backends: Backends, key_id: str, name: str) -> None:
    """Delete a model without aliases and its versions, then their artifacts."""
    uris = await transact(backends.sessions, versions.delete_model, key_id, name)
    await _remove_artifacts(backends, uris)
    await announce_change(backends.redis)


async def _remove_artifacts(backends: Backends, uris: list[str]) -> None:
    for uri in uris:
        await anyio.to_thread.run_sync(artifacts.remove, uri, backends.settings)


def describe_model(session: Session, name: str) -> dict[str, Any]:
    """A model with its versions, aliases (with canary and pending moves) and tags."""
    described = service.describe(session, name)
    described["tags"] = versions.model_named(session, name).tags or {}
    described["alias_states"] = [get_alias(session, name, a) for a in described["aliases"]]
    return described
