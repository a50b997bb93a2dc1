"""The admin API's calls (`/admin`, an `admin` key), each defined once as a flow (see
`hanmo_client.flow`); `Hanmo.admin` and `AsyncHanmo.admin` inherit them as methods. Calls
that change the registry with a POST are retried on 429 only (`hanmo_client.retry`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter

from hanmo_client.calls import body, get
from hanmo_client.flow import Call, Flow, nothing, single
from hanmo_client.retry import RATE_LIMITED
from hanmo_client.runners import endpoint
from hanmo_client.schemas import admin as wire

VERSIONS = TypeAdapter(list[wire.VersionInfo])
HISTORY = TypeAdapter(list[wire.AliasEventInfo])
KEYS = TypeAdapter(list[wire.KeyInfo])
BINARY = "application/octet-stream"
T = TypeVar("T")


def at(name: str, *rest: str | int) -> str:
    """The path of a model, or of something of it: at("m", "versions", 2)."""
    return "/".join(("/admin/models", name, *(str(part) for part in rest)))


def change(path: str, read: Callable[[bytes], T], **request: Any) -> Flow[T]:
    """A POST that changes the registry: retried on 429 only."""
    return single(Call("POST", path, read, retry_on=RATE_LIMITED, **request))


def version_state(name: str, version: int) -> Flow[wire.VersionInfo]:
    return get(at(name, "versions", version), wire.VersionInfo.model_validate_json)


def card_files(card: dict[str, Any]) -> list[str]:
    """Every file a card names: its graphs' files and its side files."""
    graphs = [str(graph["file"]) for graph in card.get("graphs", {}).values()]
    return list(dict.fromkeys([*graphs, *card.get("files", {})]))


def _workers(content: bytes) -> list[wire.WorkerInfo]:
    return wire.WorkerList.model_validate_json(content).workers


def _events(content: bytes) -> list[wire.AuditEntry]:
    return wire.AuditPage.model_validate_json(content).events


class AdminCalls:
    """The admin API. Each is a plain function of its arguments (see `endpoint`)."""

    # -- models --------------------------------------------------------------------------------

    @endpoint
    def create_model(
        name: str, kind: str, description: str = "", **tags: str
    ) -> Flow[wire.ModelInfo]:
        """Register a model name and kind (versions come next)."""
        request = wire.ModelCreate.model_validate(
            {"name": name, "kind": kind, "description": description, "tags": tags}
        )
        return change("/admin/models", wire.ModelInfo.model_validate_json, json=body(request))

    @endpoint
    def list_models(limit: int = 50, offset: int = 0) -> Flow[wire.ModelPage]:
        return get("/admin/models", wire.ModelPage.model_validate_json, limit=limit, offset=offset)

    @endpoint
    def get_model(name: str) -> Flow[wire.AdminModelRead]:
        """A model with its versions, tags and each alias's state (canary, pending move)."""
        return get(at(name), wire.AdminModelRead.model_validate_json)

    @endpoint
    def update_model(
        name: str, description: str | None = None, tags: dict[str, str] | None = None
    ) -> Flow[wire.ModelInfo]:
        request = body(wire.ModelUpdate(description=description, tags=tags))
        return single(Call("PATCH", at(name), wire.ModelInfo.model_validate_json, json=request))

    @endpoint
    def delete_model(name: str) -> Flow[None]:
        """Delete a model and its versions (ApiError 409 while an alias points into it)."""
        return single(Call("DELETE", at(name), nothing))

    # -- versions ------------------------------------------------------------------------------

    @endpoint
    def upload_version(
        name: str, directory: Path, sha256: str | None = None, wait_s: float = 30.0
    ) -> Flow[wire.VersionInfo]:
        """Upload a model directory (its card.json and every file the card names); waits up
        to `wait_s` for a worker's check: READY, still PENDING (`wait_ready`), or ApiError
        422 with the reason it failed. Files a version of the model already holds (the same
        sha256) answer with that version, as they are: nothing new is stored."""
        card = (directory / "card.json").read_bytes()
        with ExitStack() as opened:
            files: list[tuple[str, Any]] = [("card", ("card.json", card, "application/json"))]
            for file_name in card_files(json.loads(card)):
                handle = opened.enter_context((directory / file_name).open("rb"))
                files.append(("files", (file_name, handle, BINARY)))
            return (
                yield from change(
                    at(name, "versions"),
                    wire.VersionInfo.model_validate_json,
                    params={"wait_s": wait_s},
                    files=files,
                    data={"sha256": sha256} if sha256 else None,
                )
            )

    @endpoint
    def register_uri(
        name: str, uri: str, sha256: str | None = None, wait_s: float = 30.0
    ) -> Flow[wire.VersionInfo]:
        """Register an artifact directory by URI (inside the server's register roots); the
        same files again answer with their version, as `upload_version` does."""
        request = body(wire.RegisterByUri(uri=uri, sha256=sha256))
        read, params = wire.VersionInfo.model_validate_json, {"wait_s": wait_s}
        return change(at(name, "versions"), read, json=request, params=params)

    @endpoint
    def version(name: str, version: int) -> Flow[wire.VersionInfo]:
        return version_state(name, version)

    @endpoint
    def versions(name: str) -> Flow[list[wire.VersionInfo]]:
        return get(at(name, "versions"), VERSIONS.validate_json)

    @endpoint
    def wait_ready(name: str, version: int, timeout_s: float = 60.0) -> Flow[wire.VersionInfo]:
        """Poll a PENDING version until a worker has checked it (READY or FAILED)."""
        deadline = time.monotonic() + timeout_s
        while True:
            info = yield from version_state(name, version)
            if info.status != "PENDING" or time.monotonic() > deadline:
                return info
            yield 0.1

    @endpoint
    def recheck_version(name: str, version: int) -> Flow[wire.VersionInfo]:
        """Queue the check of a PENDING version again (if its first check was lost)."""
        return change(at(name, "versions", version, "check"), wire.VersionInfo.model_validate_json)

    @endpoint
    def archive_version(name: str, version: int) -> Flow[wire.VersionInfo]:
        """Archive a version: kept, never served (ApiError 409 while an alias holds it)."""
        path = at(name, "versions", version, "archive")
        return change(path, wire.VersionInfo.model_validate_json)

    @endpoint
    def delete_version(name: str, version: int) -> Flow[None]:
        return single(Call("DELETE", at(name, "versions", version), nothing))

    # -- aliases -------------------------------------------------------------------------------

    @endpoint
    def set_alias(
        name: str,
        alias: str,
        version: int,
        canary: tuple[int, float] | None = None,
        wait_s: float = 30.0,
    ) -> Flow[wire.AliasInfo]:
        """Set or move an alias, optionally with a canary (version, weight); the answer says
        `ready`, or `pending` when workers had not loaded it within `wait_s`."""
        split = wire.Canary(version=canary[0], weight=canary[1]) if canary else None
        request = body(wire.AliasPut(version=version, canary=split))
        path, read = at(name, "aliases", alias), wire.AliasInfo.model_validate_json
        return single(Call("PUT", path, read, json=request, params={"wait_s": wait_s}))

    @endpoint
    def rollback(name: str, alias: str, wait_s: float = 30.0) -> Flow[wire.AliasInfo]:
        """Move the alias back to what it held before its last move."""
        path = at(name, "aliases", alias, "rollback")
        return change(path, wire.AliasInfo.model_validate_json, params={"wait_s": wait_s})

    @endpoint
    def alias(name: str, alias: str) -> Flow[wire.AliasInfo]:
        return get(at(name, "aliases", alias), wire.AliasInfo.model_validate_json)

    @endpoint
    def delete_alias(name: str, alias: str) -> Flow[None]:
        return single(Call("DELETE", at(name, "aliases", alias), nothing))

    @endpoint
    def alias_history(name: str, alias: str) -> Flow[list[wire.AliasEventInfo]]:
        """Every move of the alias, oldest first."""
        return get(at(name, "aliases", alias, "history"), HISTORY.validate_json)

    # -- workers, queues, keys, audit ----------------------------------------------------------

    @endpoint
    def workers() -> Flow[list[wire.WorkerInfo]]:
        """Live workers from their heartbeats: device, loaded versions, failed loads."""
        return get("/admin/workers", _workers)

    @endpoint
    def queues() -> Flow[wire.QueueReport]:
        return get("/admin/queues", wire.QueueReport.model_validate_json)

    @endpoint
    def create_key(
        scope: str, name: str = "", expires_in_s: int | None = None
    ) -> Flow[wire.KeyInfo]:
        """A new API key; its secret (`key`) is in this answer only."""
        request = wire.KeyCreate.model_validate(
            {"scope": scope, "name": name, "expires_in_s": expires_in_s}
        )
        return change("/admin/keys", wire.KeyInfo.model_validate_json, json=body(request))

    @endpoint
    def list_keys() -> Flow[list[wire.KeyInfo]]:
        return get("/admin/keys", KEYS.validate_json)

    @endpoint
    def revoke_key(key_id: str) -> Flow[wire.KeyInfo]:
        return single(Call("DELETE", f"/admin/keys/{key_id}", wire.KeyInfo.model_validate_json))

    @endpoint
    def audit(
        limit: int = 100, action: str | None = None, before: int | None = None
    ) -> Flow[list[wire.AuditEntry]]:
        """Admin actions, newest first (`before`: only those with a smaller id)."""
        given = {k: v for k, v in (("action", action), ("before", before)) if v is not None}
        return get("/admin/audit", _events, limit=limit, **given)
