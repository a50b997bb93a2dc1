"""The Open Inference Protocol v2 (KServe, Triton's HTTP API) beside the native API, for the
kinds that say how (`KindSpec.oip`: samplers and predictive models): health, server and model
metadata, model readiness, and infer.

An infer call becomes the kind's native request and runs where /v1 runs it (`prepare_job`,
`JobRunner.submit`: the same routing, queue, batching, admission, deadline and metrics; the
router carries the same key and rate-limit guard); only the answer is drawn as OIP tensors.
Errors are the protocol's `{"error": ...}` (app/api/problems.py renders every /v2 problem so).
A version in the path pins it; without one the `alias` parameter (default `production`)
routes, as on /v1."""

from __future__ import annotations

import math
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Path, Request
from hanmo_client.schemas import MAX_VERSION, NAME_PATTERN, InferenceOptions
from starlette.responses import Response

from app import __version__
from app.api.deps import IdempotencyKeyDep, StateDep
from app.api.inference import (
    JobRunner,
    deadline_ms,
    json_response,
    off_loop,
    outcome_headers,
    prepare_job,
)
from app.api.oip_wire import (
    HEADER_LENGTH,
    InferCall,
    InferRequest,
    encode_answer,
    parse_call,
    response_head,
)
from app.api.problems import problem_response
from app.api.routes import health
from app.api.state import State
from app.errors import InvalidInput, ModelVersionNotFound, ServiceUnavailable
from app.kinds.catalog import KINDS
from app.kinds.oip import OipCall, OipKind, checked_inputs, native
from app.queue.results import Outcome
from app.registry import service
from app.registry.service import ServedVersion
from app.registry.tables import VersionStatus
from app.services import fleet

TAGS: list[str | Any] = ["open inference protocol"]
health_router = APIRouter(prefix="/v2/health", tags=TAGS)
router = APIRouter(prefix="/v2", tags=TAGS)
ModelName = Path(pattern=NAME_PATTERN, max_length=128)
Version = Path(pattern=r"^[1-9][0-9]{0,9}$", description="a version number (pins it)")
ROUTING = ("alias", "routing_key", "timeout_ms")  # parameters every kind takes, as on /v1
PROTOCOL = ("timeout", "binary_data_output")  # Triton's: a timeout in µs, binary outputs
INLINE_BYTES = 256 * 1024  # larger bodies are parsed off the event loop
INFER_BODY: dict[str, Any] = {  # parsed by the route itself (JSON, or the binary extension)
    "requestBody": {
        "required": True,
        "description": "JSON, or with `Inference-Header-Content-Length` a JSON header of that "
        "many bytes followed by each input's binary data (`parameters.binary_data_size`)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"}}},
    }
}


@health_router.get("/live")
async def get_live() -> dict[str, bool]:
    """The process is up."""
    return {"live": True}


@health_router.get("/ready")
async def get_ready(state: StateDep) -> Response:
    """200 when /readyz is (database or its cache, Redis, a worker for every routed version)."""
    ready = await health.readyz(state)
    if ready.status_code != 200:
        raise ServiceUnavailable(f"not ready: {orjson.loads(ready.body)['detail']}")
    return json_response({"ready": True})


@router.get("")
async def get_server_metadata() -> dict[str, Any]:
    return {"name": "hanmo", "version": __version__, "extensions": ["binary_tensor_data"]}


@router.get("/models/{name}")
async def get_model_metadata(state: StateDep, name: str = ModelName) -> dict[str, Any]:
    """The model as its `production` alias serves it: versions, inputs and outputs."""
    return await _metadata(state, name, None)


@router.get("/models/{name}/versions/{version}")
async def get_version_metadata(
    state: StateDep, name: str = ModelName, version: str = Version
) -> dict[str, Any]:
    return await _metadata(state, name, int(version))


@router.get("/models/{name}/ready")
async def get_model_ready(state: StateDep, name: str = ModelName) -> dict[str, Any]:
    """200 when a live worker holds the version `production` routes to; 503 when none does."""
    return await _ready(state, name, None)


@router.get("/models/{name}/versions/{version}/ready")
async def get_version_ready(
    state: StateDep, name: str = ModelName, version: str = Version
) -> dict[str, Any]:
    return await _ready(state, name, int(version))


@router.post("/models/{name}/infer", openapi_extra=INFER_BODY)
async def create_inference(
    request: Request,
    state: StateDep,
    idempotency_key: IdempotencyKeyDep = None,
    name: str = ModelName,
) -> Response:
    """Run the model on the call's input tensors; answer its output tensors."""
    return await _infer(request, state, name, None, idempotency_key)


@router.post("/models/{name}/versions/{version}/infer", openapi_extra=INFER_BODY)
async def create_version_inference(
    request: Request,
    state: StateDep,
    idempotency_key: IdempotencyKeyDep = None,
    name: str = ModelName,
    version: str = Version,
) -> Response:
    return await _infer(request, state, name, int(version), idempotency_key)


def openapi_schemas() -> dict[str, Any]:
    """The infer request's schema (and those it names), for the OpenAPI components."""
    schema = InferRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    return {**schema.pop("$defs", {}), "InferRequest": schema}


async def _served(
    state: State, name: str, version: int | None, alias: str | None = None
) -> tuple[ServedVersion, OipKind]:
    """The version a call names, and how its kind speaks the protocol (400 if it does not).
    A number past the registry's (a 32-bit SQL integer) names no version: 404, not the
    database's overflow (schemathesis found `/versions/7209803978/ready` a 500)."""
    if version is not None and version > MAX_VERSION:
        raise ModelVersionNotFound(f"model {name!r} has no version {version}")
    served = await state.registry.resolve(name, alias, version, want=False)
    oip = KINDS[served.kind].oip
    if oip is None:
        served_kinds = " and ".join(k.noun + "s" for k in KINDS.values() if k.oip)
        raise InvalidInput(
            f"model {name!r} is a {KINDS[served.kind].noun}: the Open Inference Protocol "
            f"serves {served_kinds} only; use its /v1 routes"
        )
    return served, oip


async def _metadata(state: State, name: str, version: int | None) -> dict[str, Any]:
    served, oip = await _served(state, name, version)
    described = await state.registry.call(service.describe, name)
    signature = served.card.get("signature", {})
    return {
        "name": name,
        "versions": [
            str(v["version"]) for v in described["versions"] if v["status"] == VersionStatus.READY
        ],
        "platform": f"hanmo_{served.kind}",
        "inputs": [tensor.listed() for tensor in oip.inputs(signature)],
        "outputs": [tensor.listed() for tensor in oip.outputs(signature)],
    }


async def _ready(state: State, name: str, version: int | None) -> dict[str, Any]:
    served, _ = await _served(state, name, version)
    workers = await fleet.workers(state.redis, state.settings.heartbeat_ttl_s)
    if not any(served.key in worker["models"] for worker in workers):
        raise ServiceUnavailable(f"no live worker holds {served.key} yet")
    return {"name": name, "version": str(served.version), "ready": True}


async def _infer(
    request: Request, state: State, name: str, version: int | None, idempotency_key: str | None
) -> Response:
    call = await _read_call(request)
    options = _options(call, version)
    served, oip = await _served(state, name, version, options.alias)
    kind_call = _kind_call(call, oip, served.card.get("signature", {}), options)
    body, prepare, rows = oip.request(kind_call, state.settings.max_sample_rows)
    served, inputs, job = await prepare_job(state, name, body, served.kind, prepare, rows)
    deadline = deadline_ms(state, body.timeout_ms, False)
    runner = JobRunner(state, request)
    job_id, meta, outcome = await runner.submit(
        served, inputs, job, deadline, idempotency_key=idempotency_key
    )
    assert outcome is not None
    if not outcome.ok:
        assert outcome.problem is not None
        return problem_response(outcome.problem, request.url.path)
    return await off_loop(
        rows, _answer, call, oip, meta, job_id, outcome, kind_call.wanted, limiter=state.renders
    )


async def _read_call(request: Request) -> InferCall:
    """The call in the request's body (a large one parsed off the event loop)."""
    raw = await request.body()
    if request.headers.get("content-encoding", "identity") != "identity":
        raise InvalidInput("compressed requests are not accepted: send Content-Encoding identity")
    header_length = request.headers.get(HEADER_LENGTH)
    if len(raw) > INLINE_BYTES:
        return await anyio.to_thread.run_sync(parse_call, raw, header_length)
    return parse_call(raw, header_length)


def _options(call: InferCall, version: int | None) -> InferenceOptions:
    """The routing options every native request takes, from the path and the parameters."""
    given = call.request.parameters
    options: dict[str, Any] = {"version": version, **{k: given.get(k) for k in ROUTING}}
    timeout_us = given.get("timeout")
    if options["timeout_ms"] is None and type(timeout_us) is int:
        options["timeout_ms"] = max(1, math.ceil(timeout_us / 1000))
    return native(InferenceOptions, options)


def _kind_call(
    call: InferCall, oip: OipKind, signature: dict[str, Any], options: InferenceOptions
) -> OipCall:
    """The call as the kind sees it: checked inputs, its own parameters, outputs by name."""
    given = call.request.parameters
    unknown = sorted(set(given) - {*ROUTING, *PROTOCOL, *oip.parameters})
    if unknown:
        raise InvalidInput(f"unknown parameters {unknown}; this model takes {oip.parameters}")
    outputs = {tensor.name for tensor in oip.outputs(signature)}
    wanted = None
    if call.request.outputs is not None:
        wanted = frozenset(o.name for o in call.request.outputs)
        if wanted - outputs:
            raise InvalidInput(f"unknown outputs {sorted(wanted - outputs)}: {sorted(outputs)}")
    return OipCall(
        checked_inputs(oip.inputs(signature), call.tensors),
        {k: v for k, v in given.items() if k in oip.parameters},
        options.model_dump(exclude_none=True),
        wanted,
    )


def _answer(
    call: InferCall,
    oip: OipKind,
    meta: dict[str, Any],
    job_id: str,
    outcome: Outcome,
    wanted: frozenset[str] | None,
) -> Response:
    """The finished job's output tensors (those asked for, else every one it gives)."""
    outputs, parameters = oip.answer(meta, outcome)
    if wanted is not None:
        outputs = {name: value for name, value in outputs.items() if name in wanted}
    provenance = {
        "job_id": job_id,
        "alias": meta["alias"],
        "sha256": meta["sha256"],
        "runtime": outcome.info.get("runtime", ""),
        "provider": outcome.info.get("provider", ""),
    }
    provenance = {k: v for k, v in provenance.items() if v is not None}
    head = response_head(call, meta["model"], meta["version"], {**provenance, **parameters})
    body, headers = encode_answer(call, head, outputs)
    media_type = "application/octet-stream" if headers else "application/json"
    headers.update(outcome_headers(meta, job_id))
    return Response(body, media_type=media_type, headers=headers)
