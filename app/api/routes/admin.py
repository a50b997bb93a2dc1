"""The admin API under /admin: models, versions (upload or register by URI), aliases (move,
canary, history, rollback), workers and queues, API keys, audit. Every route needs an
`admin` key; every change is audited in the same transaction (app.registry.admin)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path as FsPath
from typing import IO, Any, TypeVar
from urllib.parse import unquote, urlsplit

import anyio
import fsspec
from fastapi import APIRouter, Path, Query, Request
from hanmo_client.schemas import ALIAS_PATTERN, MAX_VERSION, NAME_PATTERN
from hanmo_client.schemas.admin import (
    AdminModelRead,
    AliasEventInfo,
    AliasInfo,
    AliasPut,
    AuditPage,
    KeyCreate,
    KeyInfo,
    ModelCreate,
    ModelInfo,
    ModelPage,
    ModelUpdate,
    QueueReport,
    RegisterByUri,
    VersionInfo,
    WorkerList,
)
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from starlette.datastructures import UploadFile
from starlette.responses import Response

from app.api.auth import AdminDep
from app.api.deps import StateDep
from app.api.inference import checked_response
from app.api.json_body import JsonLimitedRoute, check_shape
from app.api.state import State
from app.errors import (
    ArtifactCorrupt,
    Conflict,
    ContractViolation,
    DatabaseUnavailable,
    HanmoError,
    InvalidInput,
    PayloadTooLarge,
    RedisUnavailable,
)
from app.queue import keys
from app.queue.client import REDIS_ERRORS
from app.redis_conn import as_text
from app.registry import admin, apikeys, artifacts, service
from app.registry.cards import Card

router = APIRouter(prefix="/admin", tags=["admin"], route_class=JsonLimitedRoute)
ModelName = Path(pattern=NAME_PATTERN, max_length=128)
AliasName = Path(pattern=ALIAS_PATTERN, max_length=64)
VersionNumber = Path(ge=1, le=MAX_VERSION)
KeyId = Path(pattern=r"^[0-9a-f]{12}$")
WaitS = Query(default=30.0, ge=0, le=120, description="wait this long for the swap to commit")
T = TypeVar("T")
CHUNK = 1 << 20
MAX_ARTIFACT_FILES = 32


async def db(state: State, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a registry function in one transaction, in a thread."""

    def run() -> T:
        with state.sessions.begin() as session:
            return fn(session, *args, **kwargs)

    try:
        return await anyio.to_thread.run_sync(run)
    except HanmoError:
        raise
    except IntegrityError as exc:
        raise Conflict("a concurrent change conflicted with this one; retry") from exc
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable("the model registry cannot be reached") from exc


async def changed(state: State) -> None:
    """Tell workers and api replicas that the registry changed (best effort)."""
    state.registry.invalidate()
    try:
        await state.redis.incr(keys.REGISTRY_GENERATION)
    except REDIS_ERRORS:
        pass


async def _poll(
    state: State,
    wait_s: float,
    settled: Callable[[dict[str, Any]], bool],
    view: dict[str, Any],
    read: Callable[..., dict[str, Any]],
    *args: Any,
) -> dict[str, Any]:
    """Re-read `view` until `settled` (a worker finished with it) or `wait_s` has passed."""
    deadline = time.monotonic() + wait_s
    while not settled(view) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        view = await db(state, read, *args)
    return view


# -- models ------------------------------------------------------------------------------------


@router.post("/models", status_code=201, response_model=ModelInfo)
async def create_model(body: ModelCreate, state: StateDep, who: AdminDep) -> Response:
    """Register a model name and kind (versions come next)."""
    view = await db(
        state, admin.create_model, who.key_id, body.name, body.kind, body.description, body.tags
    )
    location = {"Location": f"/admin/models/{body.name}"}
    return checked_response(ModelInfo.model_validate, view, status=201, headers=location)


@router.get("/models", response_model=ModelPage)
async def list_models(
    state: StateDep,
    who: AdminDep,
    limit: int = Query(default=50, ge=1, le=admin.MAX_PAGE),
    offset: int = Query(default=0, ge=0, le=1_000_000),
) -> Any:
    """Models by name, a page at a time."""
    return await db(state, admin.list_models, limit, offset)


@router.get("/models/{name}", response_model=AdminModelRead)
async def get_model(state: StateDep, who: AdminDep, name: str = ModelName) -> Any:
    """A model with its versions, aliases (with canary and pending moves) and tags."""

    def read(session: Any) -> dict[str, Any]:
        described = service.describe(session, name)
        model = admin._model(session, name)
        described["tags"] = model.tags or {}
        described["alias_states"] = [
            admin.get_alias(session, name, alias) for alias in described["aliases"]
        ]
        return described

    return await db(state, read)


@router.patch("/models/{name}", response_model=ModelInfo)
async def update_model(
    body: ModelUpdate, state: StateDep, who: AdminDep, name: str = ModelName
) -> Any:
    """Change a model's description and/or tags."""
    return await db(state, admin.update_model, who.key_id, name, body.description, body.tags)


@router.delete("/models/{name}", status_code=204)
async def delete_model(state: StateDep, who: AdminDep, name: str = ModelName) -> Response:
    """Delete a model and its versions; refused (409) while any alias points into it."""
    uris = await db(state, admin.delete_model, who.key_id, name)
    for uri in uris:
        await anyio.to_thread.run_sync(_remove_artifact, state, uri)
    await changed(state)
    return Response(status_code=204)


# -- versions ----------------------------------------------------------------------------------


def openapi_schemas() -> dict[str, Any]:
    """Component schemas of the bodies the upload route parses itself."""
    schema = RegisterByUri.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"RegisterByUri": schema}


UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["card", "files"],
                    "properties": {
                        "card": {"type": "string", "format": "binary", "description": "card.json"},
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "every file the card names, by file name",
                        },
                        "sha256": {"type": "string", "description": "expected version digest"},
                    },
                }
            },
            "application/json": {"schema": {"$ref": "#/components/schemas/RegisterByUri"}},
        },
    }
}


@router.post(
    "/models/{name}/versions",
    status_code=202,
    response_model=VersionInfo,
    openapi_extra=UPLOAD_DOC,
)
async def add_version(
    request: Request,
    state: StateDep,
    who: AdminDep,
    name: str = ModelName,
    wait_s: float = Query(
        default=30.0, ge=0, le=120, description="wait this long for a worker's check"
    ),
) -> Response:
    """Add a version: upload its files and card (multipart, streamed to the artifact store,
    each file's sha256 checked against the card), or register an artifact directory by URI
    (JSON `{"uri": …}`). It is PENDING until a worker has loaded it in a separate process and
    checked it against its kind: then READY (201), or FAILED with the reason (422; its files
    are removed). Still PENDING after `wait_s`: 202, poll the `Location`. The same files as a
    version the model has (same sha256, not FAILED): 200 with that version, nothing stored."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        card, expected, files = await _read_upload(request)
        open_source = _uploaded(files)
    elif content_type.startswith("application/json"):
        try:
            body = RegisterByUri.model_validate_json(await request.body())
        except ValidationError as exc:
            raise InvalidInput(f"invalid body: {exc.errors()[0]['msg']}") from exc
        uri = _allowed_uri(state, body.uri)
        card = await anyio.to_thread.run_sync(_remote_card, uri)
        expected = body.sha256
        open_source = _remote(uri)
    else:
        raise InvalidInput("send multipart/form-data (card + files) or JSON {uri}")
    if card.name != name:
        raise InvalidInput(f"the card names model {card.name!r}, not {name!r}")
    digest = card.digest()
    if expected is not None and expected != digest:
        raise ArtifactCorrupt(f"the version's sha256 is {digest}; the request says {expected}")
    reused = await _reuse(state, who.key_id, card, open_source)
    if reused is not None:
        return reused
    # The row first: it claims the version number and the artifact's directory.
    root = state.settings.resolved_artifact_root()
    view = await db(state, admin.add_version, who.key_id, card, root)
    number, uri = view["version"], view["artifact_uri"]
    try:
        await anyio.to_thread.run_sync(_store_checked, uri, card, open_source)
    except BaseException as exc:
        await anyio.to_thread.run_sync(_remove_artifact, state, uri)
        await db(state, admin.discard_version, who.key_id, name, number, str(exc)[:500])
        raise
    href = f"/admin/models/{name}/versions/{number}"
    try:
        await _queue_check(state, name, number, uri)
    except REDIS_ERRORS:
        view["status_message"] = "queueing its check failed (Redis away): POST …/check"
        return checked_response(
            VersionInfo.model_validate, view, status=202, headers={"Location": href}
        )
    view = await _poll(state, wait_s, lambda v: v["status"] != "PENDING", view,
                       admin.get_version, name, number)  # fmt: skip
    if view["status"] == "FAILED":
        raise ContractViolation(
            f"{name} v{number} failed its check: {view['status_message']}", version=view
        )
    status = 201 if view["status"] == "READY" else 202
    return checked_response(
        VersionInfo.model_validate, view, status=status, headers={"Location": href}
    )


async def _read_upload(request: Request) -> tuple[Card, str | None, list[UploadFile]]:
    try:
        form = await request.form(max_files=MAX_ARTIFACT_FILES + 1, max_fields=8)
    except HanmoError:
        raise
    except Exception as exc:  # malformed multipart, too many parts
        if "exceeds" in str(exc) and "bytes" in str(exc):
            raise PayloadTooLarge(str(exc)) from exc
        raise InvalidInput(f"the multipart body cannot be read: {exc}") from exc
    raw_card = form.get("card")
    if raw_card is None:
        raise InvalidInput("the upload needs a `card` part (card.json)")
    card_bytes = await raw_card.read() if isinstance(raw_card, UploadFile) else raw_card.encode()
    if len(card_bytes) > 1 << 20:
        raise PayloadTooLarge("card.json is over 1 MiB")
    check_shape(card_bytes)
    try:
        card = Card.model_validate_json(card_bytes)
    except ValidationError as exc:
        raise InvalidInput(f"card.json is not a valid card: {exc.errors()[0]['msg']}") from exc
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    names = [FsPath(f.filename or "").name for f in files]
    if any(not n or n != (f.filename or "") for n, f in zip(names, files, strict=True)):
        raise InvalidInput("each file part needs a plain file name (no directories)")
    wanted = set(card.checksums())
    if sorted(names) != sorted(wanted):
        missing, extra = sorted(wanted - set(names)), sorted(set(names) - wanted)
        raise InvalidInput(
            "the files must be exactly those the card names"
            + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else "")
            + ("; duplicates" if len(names) != len(set(names)) else "")
        )
    sha = form.get("sha256")
    expected = sha if isinstance(sha, str) and sha else None
    if expected is not None and (len(expected) != 64 or not _is_hex(expected)):
        raise InvalidInput("sha256 must be 64 lowercase hex digits")
    return card, expected, files


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


Opener = Callable[[str], AbstractContextManager[IO[bytes]]]


async def _reuse(state: State, key_id: str, card: Card, open_source: Opener) -> Response | None:
    """The answer to the same files again (a version of the model has their digest): 200 with
    that version, the upload's bytes checked against the card but stored nowhere."""
    number = await db(state, admin.find_version, card)
    if number is None:
        return None
    await anyio.to_thread.run_sync(_copy_checked, card, open_source, _nowhere)
    view = await db(state, admin.reuse_version, key_id, card.name, number)
    href = {"Location": f"/admin/models/{card.name}/versions/{number}"}
    return checked_response(VersionInfo.model_validate, view, status=200, headers=href)


def _nowhere(_: str) -> AbstractContextManager[IO[bytes]]:
    return open(os.devnull, "wb")


def _store_checked(uri: str, card: Card, open_source: Opener) -> None:
    """Stream every file the card names from `open_source` into the artifact store at `uri`
    (`_copy_checked`), then write the card. Uploads and registrations by URI both store
    through here."""
    fs, path = fsspec.core.url_to_fs(uri)
    fs.makedirs(path, exist_ok=True)
    _copy_checked(card, open_source, lambda name: fs.open(f"{path}/{name}", "wb"))
    with fs.open(f"{path}/card.json", "wb") as out:
        out.write(card.model_dump_json(indent=2).encode())


def _copy_checked(card: Card, open_source: Opener, open_target: Opener) -> None:
    """Copy every file the card names from `open_source` to `open_target`, hashing as it
    goes: ArtifactCorrupt on the first sha256 that differs from the card's."""
    for name, expected in card.checksums().items():
        if "/" in name or name in ("", ".", ".."):
            raise InvalidInput(f"the card names a file outside its directory: {name!r}")
        digest = hashlib.sha256()
        with open_source(name) as source, open_target(name) as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected:
            raise ArtifactCorrupt(
                f"{name}: sha256 is {digest.hexdigest()}, the card says {expected}"
            )


def _uploaded(files: list[UploadFile]) -> Opener:
    """The upload's file parts by name (their spooled files, rewound by the form parser)."""
    by_name = {upload.filename or "": upload.file for upload in files}
    return lambda name: nullcontext(by_name[name])


def _allowed_uri(state: State, uri: str) -> str:
    """The URI if it lies inside a configured register root, else 422."""
    if "::" in unquote(uri):  # fsspec would chain file systems (`simplecache::s3://…`)
        raise InvalidInput("the URI may not chain file systems with `::`")
    parts = urlsplit(uri)
    if ".." in unquote(parts.path).split("/") or "\\" in uri:
        raise InvalidInput("the URI may not contain `..`")
    roots = state.settings.resolved_register_roots()
    if parts.scheme in ("", "file"):
        if parts.scheme == "file" and parts.netloc not in ("", "localhost"):
            raise InvalidInput("file:// URIs must name a local path")
        path = FsPath(unquote(parts.path)).resolve()
        for root in roots:
            if "://" in root and not root.startswith("file://"):
                continue
            base = FsPath(unquote(urlsplit(root).path) if "://" in root else root).resolve()
            if path.is_relative_to(base):
                artifacts.refuse_links(path)
                return f"file://{path}"
    else:
        for root in roots:
            if "://" in root and uri.startswith(root.rstrip("/") + "/"):
                return uri
    raise InvalidInput(f"{uri!r} is outside the allowed register roots")


def _remote_card(uri: str) -> Card:
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        raw = fs.cat_file(f"{path.rstrip('/')}/card.json")
    except Exception as exc:  # not there, not readable
        raise InvalidInput(f"no readable card.json under {uri!r}") from exc
    if len(raw) > 1 << 20:
        raise PayloadTooLarge("card.json is over 1 MiB")
    try:
        return Card.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidInput(f"card.json is not a valid card: {exc.errors()[0]['msg']}") from exc


def _remote(source: str) -> Opener:
    """The files of an artifact directory named by URI; one that cannot be read is a 422."""
    fs, path = fsspec.core.url_to_fs(source)

    def open_source(name: str) -> AbstractContextManager[IO[bytes]]:
        try:
            return fs.open(f"{path.rstrip('/')}/{name}", "rb")  # type: ignore[no-any-return]
        except OSError as exc:
            raise InvalidInput(f"a file the card names cannot be read: {exc}") from exc

    return open_source


async def _queue_check(state: State, name: str, version: int, uri: str) -> None:
    """Ask the workers to load and check a PENDING version (the `hanmo:checks` stream)."""
    fields = {"model": name, "version": version, "uri": uri}
    await state.redis.xadd(keys.CHECKS, fields, maxlen=100_000)  # type: ignore[arg-type]


def _remove_artifact(state: State, uri: str) -> None:
    artifacts.remove(uri, state.settings.resolved_artifact_root())


@router.get("/models/{name}/versions", response_model=list[VersionInfo])
async def list_versions(state: StateDep, who: AdminDep, name: str = ModelName) -> Any:
    return await db(state, admin.list_versions, name)


@router.get("/models/{name}/versions/{version}", response_model=VersionInfo)
async def get_version(
    state: StateDep, who: AdminDep, name: str = ModelName, version: int = VersionNumber
) -> Any:
    return await db(state, admin.get_version, name, version)


@router.post("/models/{name}/versions/{version}/check", status_code=202, response_model=VersionInfo)
async def recheck_version(
    state: StateDep, who: AdminDep, name: str = ModelName, version: int = VersionNumber
) -> Any:
    """Queue the check of a PENDING version again (if its first check was lost)."""
    view = await db(state, admin.get_version, name, version)
    if view["status"] != "PENDING":
        raise Conflict(f"{name} v{version} is {view['status']}, not PENDING")
    await _queue_check(state, name, version, view["artifact_uri"])
    return view


@router.post("/models/{name}/versions/{version}/archive", response_model=VersionInfo)
async def archive_version(
    state: StateDep, who: AdminDep, name: str = ModelName, version: int = VersionNumber
) -> Any:
    """Archive a version: kept, never served; refused (409) while an alias holds it."""
    view = await db(state, admin.archive_version, who.key_id, name, version)
    await changed(state)
    return view


@router.delete("/models/{name}/versions/{version}", status_code=204)
async def delete_version(
    state: StateDep, who: AdminDep, name: str = ModelName, version: int = VersionNumber
) -> Response:
    """Delete a version and its artifact; refused (409) while an alias holds it."""
    uri = await db(state, admin.delete_version, who.key_id, name, version)
    await anyio.to_thread.run_sync(_remove_artifact, state, uri)
    await changed(state)
    return Response(status_code=204)


# -- aliases -----------------------------------------------------------------------------------


async def _settled(
    state: State, name: str, alias: str, view: dict[str, Any], wait_s: float
) -> Response:
    """Wait (up to wait_s) for a requested move to be committed or failed by a worker."""
    view = await _poll(state, wait_s, lambda v: v["state"] != "pending", view,
                       admin.get_alias, name, alias)  # fmt: skip
    if view["state"] == "failed":
        raise Conflict(
            f"the move of {name}@{alias} failed; it still routes to v{view['version']}: "
            f"{view['last_error']}",
            alias=view,
        )
    state.registry.invalidate()
    return checked_response(
        AliasInfo.model_validate, view, status=202 if view["state"] == "pending" else 200
    )


@router.get("/models/{name}/aliases/{alias}", response_model=AliasInfo)
async def get_alias(
    state: StateDep, who: AdminDep, name: str = ModelName, alias: str = AliasName
) -> Any:
    return await db(state, admin.get_alias, name, alias)


@router.put("/models/{name}/aliases/{alias}", response_model=AliasInfo)
async def put_alias(
    body: AliasPut,
    state: StateDep,
    who: AdminDep,
    name: str = ModelName,
    alias: str = AliasName,
    wait_s: float = WaitS,
) -> Response:
    """Set or move an alias, optionally splitting traffic with a canary. Workers load and warm
    the new version(s) first; the api routes to them once a worker has them ready (200), or
    the move is still pending after `wait_s` (202; poll GET). A version that fails to load
    leaves the alias where it was (409, and `last_error` on the alias)."""
    target = admin.Target(
        body.version,
        body.canary.version if body.canary else None,
        body.canary.weight if body.canary else 0.0,
    )
    action = "canary" if body.canary else "move"
    view = await db(state, admin.request_alias, who.key_id, name, alias, target, action=action)
    await changed(state)
    return await _settled(state, name, alias, view, wait_s)


@router.post("/models/{name}/aliases/{alias}/rollback", response_model=AliasInfo)
async def rollback_alias(
    state: StateDep,
    who: AdminDep,
    name: str = ModelName,
    alias: str = AliasName,
    wait_s: float = WaitS,
) -> Response:
    """Move the alias back to what it held before its last move (same swap as PUT)."""
    view = await db(state, admin.rollback, who.key_id, name, alias)
    await changed(state)
    return await _settled(state, name, alias, view, wait_s)


@router.delete("/models/{name}/aliases/{alias}", status_code=204)
async def delete_alias(
    state: StateDep, who: AdminDep, name: str = ModelName, alias: str = AliasName
) -> Response:
    await db(state, admin.delete_alias, who.key_id, name, alias)
    await changed(state)
    return Response(status_code=204)


@router.get("/models/{name}/aliases/{alias}/history", response_model=list[AliasEventInfo])
async def alias_history(
    state: StateDep, who: AdminDep, name: str = ModelName, alias: str = AliasName
) -> Any:
    """Every move of the alias, oldest first: requested, moved, failed, deleted."""
    return await db(state, admin.alias_history, name, alias)


# -- workers and queues ------------------------------------------------------------------------


@router.get("/workers", response_model=WorkerList)
async def workers(state: StateDep, who: AdminDep) -> Any:
    """Live workers from their heartbeats: device, loaded versions with batches and rows,
    failed loads, last error."""
    try:
        ids = await state.redis.zrangebyscore(
            keys.WORKERS, time.time() - state.settings.heartbeat_ttl_s, "+inf"
        )
        out = []
        for worker_id in ids:
            wid = as_text(worker_id)
            fields = await state.redis.hgetall(keys.worker(wid))
            if not fields:
                continue
            beat = {as_text(k): as_text(v) for k, v in fields.items()}
            out.append(
                {
                    "id": beat.get("id", wid),
                    "host": beat.get("host", ""),
                    "pid": int(beat.get("pid", "0")),
                    "device": beat.get("device", ""),
                    "models": json.loads(beat.get("models", "{}")),
                    "failed_loads": json.loads(beat.get("failed_loads", "{}")),
                    "last_error": beat.get("last_error", ""),
                    "beat_age_s": round(time.time() - float(beat.get("beat_s", "0")), 3),
                }
            )
    except REDIS_ERRORS as exc:
        raise RedisUnavailable("worker heartbeats cannot be read: Redis is away") from exc
    return {"workers": out}


@router.get("/queues", response_model=QueueReport)
async def queues(state: StateDep, who: AdminDep) -> Any:
    """Per served version: jobs waiting in its stream and entries a worker holds unacked."""
    served = await db(state, service.served)
    out = []
    try:
        for version in served:
            stream = keys.stream(version.model, version.version)
            depth = await state.redis.xlen(stream)
            pending = 0
            try:
                summary = await state.redis.xpending(stream, keys.GROUP)
                pending = int(summary.get("pending", 0))
            except Exception:  # no group yet: nothing pending
                pending = 0
            out.append(
                {"model": version.model, "version": version.version, "depth": depth,
                 "pending": pending}
            )  # fmt: skip
        checks = await state.redis.xlen(keys.CHECKS)
    except REDIS_ERRORS as exc:
        raise RedisUnavailable("queue depths cannot be read: Redis is away") from exc
    return {"queues": out, "checks": checks}


# -- keys and audit ----------------------------------------------------------------------------


@router.post("/keys", status_code=201, response_model=KeyInfo)
async def create_key(body: KeyCreate, state: StateDep, who: AdminDep) -> Response:
    """A new key. Its secret (`key`) is in this response only; it is stored hashed."""
    view = await db(state, apikeys.create, who.key_id, body.scope, body.name, body.expires_in_s)
    return checked_response(KeyInfo.model_validate, view, status=201)


@router.get("/keys", response_model=list[KeyInfo])
async def list_keys(state: StateDep, who: AdminDep) -> Any:
    return await db(state, apikeys.list_keys)


@router.delete("/keys/{key_id}", response_model=KeyInfo)
async def revoke_key(state: StateDep, who: AdminDep, key_id: str = KeyId) -> Any:
    """Revoke a key (at once on this api process; other replicas within the key cache TTL)."""
    view = await db(state, apikeys.revoke, who.key_id, key_id)
    state.keys.clear()
    return view


@router.get("/audit", response_model=AuditPage)
async def audit_log(
    state: StateDep,
    who: AdminDep,
    limit: int = Query(default=100, ge=1, le=admin.MAX_PAGE),
    before: int | None = Query(default=None, ge=1, le=MAX_VERSION),
    action: str | None = Query(default=None, max_length=64, pattern=r"^[a-z.-]+$"),
) -> Any:
    """Admin actions, newest first: key id, action, target, before/after, time."""
    return await db(state, admin.audit_log, limit, before, action)
