"""The admin API under /admin: models, versions (upload or register by URI), aliases (move,
canary, history, rollback), workers and queues, API keys, audit. Every route needs an
`admin` key and only speaks HTTP: it parses, calls a service (app.services) or a registry
function in one transaction, and renders the answer; every change is audited in its
transaction (app.registry.audit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

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
from starlette.datastructures import UploadFile
from starlette.responses import Response

from app.api.auth import AdminDep
from app.api.deps import StateDep
from app.api.inference import checked_response
from app.api.json_body import JsonLimitedRoute, check_shape
from app.api.state import State
from app.errors import HanmoError, InvalidInput, PayloadTooLarge
from app.registry import aliases, apikeys, audit, ingest, versions
from app.services import aliases as alias_moves
from app.services import fleet
from app.services import versions as version_service
from app.services.backends import transact

router = APIRouter(prefix="/admin", tags=["admin"], route_class=JsonLimitedRoute)
ModelName = Path(pattern=NAME_PATTERN, max_length=128)
AliasName = Path(pattern=ALIAS_PATTERN, max_length=64)
VersionNumber = Path(ge=1, le=MAX_VERSION)
KeyId = Path(pattern=r"^[0-9a-f]{12}$")
WaitS = Query(default=30.0, ge=0, le=120, description="wait this long for the swap to commit")
T = TypeVar("T")
STATUS = {
    version_service.Outcome.REUSED: 200,
    version_service.Outcome.READY: 201,
    version_service.Outcome.PENDING: 202,
}


async def db(state: State, fn: Callable[..., T], *args: Any) -> T:
    """A registry function in one transaction, off the event loop."""
    return await transact(state.sessions, fn, *args)


# -- models ------------------------------------------------------------------------------------


@router.post("/models", status_code=201, response_model=ModelInfo)
async def create_model(body: ModelCreate, state: StateDep, who: AdminDep) -> Response:
    """Register a model name and kind (versions come next)."""
    view = await db(
        state, versions.create_model, who.key_id, body.name, body.kind, body.description,
        body.tags,
    )  # fmt: skip
    location = {"Location": f"/admin/models/{body.name}"}
    return checked_response(ModelInfo.model_validate, view, status=201, headers=location)


@router.get("/models", response_model=ModelPage)
async def list_models(
    state: StateDep,
    who: AdminDep,
    limit: int = Query(default=50, ge=1, le=audit.MAX_PAGE),
    offset: int = Query(default=0, ge=0, le=1_000_000),
) -> Any:
    """Models by name, a page at a time."""
    return await db(state, versions.list_models, limit, offset)


@router.get("/models/{name}", response_model=AdminModelRead)
async def get_model(state: StateDep, who: AdminDep, name: str = ModelName) -> Any:
    """A model with its versions, aliases (with canary and pending moves) and tags."""
    return await db(state, version_service.describe_model, name)


@router.patch("/models/{name}", response_model=ModelInfo)
async def update_model(
    body: ModelUpdate, state: StateDep, who: AdminDep, name: str = ModelName
) -> Any:
    """Change a model's description and/or tags."""
    return await db(state, versions.update_model, who.key_id, name, body.description, body.tags)


@router.delete("/models/{name}", status_code=204)
async def delete_model(state: StateDep, who: AdminDep, name: str = ModelName) -> Response:
    """Delete a model and its versions; refused (409) while any alias points into it."""
    await version_service.delete_model(state, who.key_id, name)
    state.registry.invalidate()
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
        source = await _uploaded(request)
    elif content_type.startswith("application/json"):
        try:
            body = RegisterByUri.model_validate_json(await request.body())
        except ValidationError as exc:
            raise InvalidInput(f"invalid body: {exc.errors()[0]['msg']}") from exc
        source = await version_service.from_uri(state.settings, body.uri, body.sha256)
    else:
        raise InvalidInput("send multipart/form-data (card + files) or JSON {uri}")
    added = await version_service.add(state, who.key_id, name, source, wait_s)
    href = f"/admin/models/{name}/versions/{added.view['version']}"
    return checked_response(
        VersionInfo.model_validate, added.view, status=STATUS[added.outcome],
        headers={"Location": href},
    )  # fmt: skip


async def _uploaded(request: Request) -> version_service.Source:
    """The multipart upload's card, file parts and expected digest."""
    try:
        form = await request.form(max_files=ingest.MAX_ARTIFACT_FILES + 1, max_fields=8)
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
    if len(card_bytes) > ingest.MAX_CARD_BYTES:
        raise PayloadTooLarge("card.json is over 1 MiB")
    check_shape(card_bytes)
    parts = [(f.filename or "", f.file) for f in form.getlist("files") if isinstance(f, UploadFile)]
    sha = form.get("sha256")
    return version_service.from_upload(card_bytes, parts, sha if isinstance(sha, str) else None)


@router.get("/models/{name}/versions", response_model=list[VersionInfo])
async def list_versions(state: StateDep, who: AdminDep, name: str = ModelName) -> Any:
    return await version_service.list_versions(state, name)


@router.get("/models/{name}/versions/{version}", response_model=VersionInfo)
async def get_version(
    state: StateDep, who: AdminDep, name: str = ModelName, version: int = VersionNumber
) -> Any:
    return await version_service.get_version(state, name, version)


@router.post("/models/{name}/versions/{version}/check", status_code=202, response_model=VersionInfo)
async def recheck_version(
    state: StateDep, who: AdminDep, name: str = ModelName, version: int = VersionNumber
) -> Any:
    """Queue the check of a PENDING version again (if its first check was lost)."""
    return await version_service.recheck(state, name, version)


@router.post("/models/{name}/versions/{version}/archive", response_model=VersionInfo)
async def archive_version(
    state: StateDep, who: AdminDep, name: str = ModelName, version: int = VersionNumber
) -> Any:
    """Archive a version: kept, never served; refused (409) while an alias holds it."""
    view = await version_service.archive(state, who.key_id, name, version)
    state.registry.invalidate()
    return view


@router.delete("/models/{name}/versions/{version}", status_code=204)
async def delete_version(
    state: StateDep, who: AdminDep, name: str = ModelName, version: int = VersionNumber
) -> Response:
    """Delete a version and its artifact; refused (409) while an alias holds it."""
    await version_service.delete(state, who.key_id, name, version)
    state.registry.invalidate()
    return Response(status_code=204)


# -- aliases -----------------------------------------------------------------------------------


def _alias_response(state: State, view: dict[str, Any]) -> Response:
    """200 once the move is committed, 202 while a worker is still loading its versions."""
    state.registry.invalidate()
    status = 202 if view["state"] == "pending" else 200
    return checked_response(AliasInfo.model_validate, view, status=status)


@router.get("/models/{name}/aliases/{alias}", response_model=AliasInfo)
async def get_alias(
    state: StateDep, who: AdminDep, name: str = ModelName, alias: str = AliasName
) -> Any:
    return await db(state, aliases.get_alias, name, alias)


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
    target = aliases.Target(
        body.version,
        body.canary.version if body.canary else None,
        body.canary.weight if body.canary else 0.0,
    )
    view = await alias_moves.move(state, who.key_id, name, alias, target, wait_s)
    return _alias_response(state, view)


@router.post("/models/{name}/aliases/{alias}/rollback", response_model=AliasInfo)
async def rollback_alias(
    state: StateDep,
    who: AdminDep,
    name: str = ModelName,
    alias: str = AliasName,
    wait_s: float = WaitS,
) -> Response:
    """Move the alias back to what it held before its last move (same swap as PUT)."""
    view = await alias_moves.rollback(state, who.key_id, name, alias, wait_s)
    return _alias_response(state, view)


@router.delete("/models/{name}/aliases/{alias}", status_code=204)
async def delete_alias(
    state: StateDep, who: AdminDep, name: str = ModelName, alias: str = AliasName
) -> Response:
    await alias_moves.delete(state, who.key_id, name, alias)
    state.registry.invalidate()
    return Response(status_code=204)


@router.get("/models/{name}/aliases/{alias}/history", response_model=list[AliasEventInfo])
async def alias_history(
    state: StateDep, who: AdminDep, name: str = ModelName, alias: str = AliasName
) -> Any:
    """Every move of the alias, oldest first: requested, moved, failed, deleted."""
    return await db(state, aliases.alias_history, name, alias)


# -- workers and queues ------------------------------------------------------------------------


@router.get("/workers", response_model=WorkerList)
async def workers(state: StateDep, who: AdminDep) -> Any:
    """Live workers from their heartbeats: device, loaded versions with batches and rows,
    failed loads, last error."""
    return {"workers": await fleet.workers(state.redis, state.settings.heartbeat_ttl_s)}


@router.get("/queues", response_model=QueueReport)
async def queues(state: StateDep, who: AdminDep) -> Any:
    """Per served version: jobs waiting in its stream and entries a worker holds unacked."""
    return await fleet.queues(state)


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
    limit: int = Query(default=100, ge=1, le=audit.MAX_PAGE),
    before: int | None = Query(default=None, ge=1, le=MAX_VERSION),
    action: str | None = Query(default=None, max_length=64, pattern=r"^[a-z.-]+$"),
) -> Any:
    """Admin actions, newest first: key id, action, target, before/after, time."""
    return await db(state, audit.audit_log, limit, before, action)
