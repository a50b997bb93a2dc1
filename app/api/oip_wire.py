"""The Open Inference Protocol's wire format (KServe v2 / Triton HTTP): the infer request's JSON
envelope, its tensors given as JSON data or with the binary tensor data extension (a JSON header
of `Inference-Header-Content-Length` bytes, then each tensor's raw little-endian bytes), the
response in the same two forms, and errors as `{"error": "..."}`.

Every size a client controls is bounded: the body by HANMO_MAX_BODY_BYTES (app/api/limits.py),
the JSON header's nesting and value count (app/api/json_body.py), and here the number of
inputs, outputs and parameters, a tensor's rank, names and ids."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt
from starlette.responses import Response

from app.api.json_body import check_shape
from app.errors import InvalidInput
from app.kinds.oip import DATATYPES, DTYPES, Scalar, native

PREFIX = "/v2"
HEADER_LENGTH = "Inference-Header-Content-Length"
MAX_TENSORS = 16  # inputs or outputs named in one call (hanmo's kinds take at most 5)
MAX_RANK = 8
Name = Annotated[str, Field(min_length=1, max_length=64)]
Parameters = Annotated[
    dict[Name, StrictBool | StrictInt | StrictFloat | Annotated[str, Field(max_length=256)]],
    Field(max_length=32),
]


class InferInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    shape: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(max_length=MAX_RANK)
    datatype: Annotated[str, Field(max_length=8)]
    parameters: Parameters = Field(default_factory=dict)
    data: Any = None  # checked when decoded: a flat or nested list of the datatype's values


class InferOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    parameters: Parameters = Field(default_factory=dict)


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(max_length=256)] | None = None
    parameters: Parameters = Field(default_factory=dict)
    inputs: list[InferInput] = Field(min_length=1, max_length=MAX_TENSORS)
    outputs: list[InferOutput] | None = Field(default=None, max_length=MAX_TENSORS)


@dataclass(frozen=True, slots=True)
class InferCall:
    """A parsed infer request: its envelope and each input as (datatype, array)."""

    request: InferRequest
    tensors: dict[str, tuple[str, np.ndarray]]

    def binary(self, name: str) -> bool:
        """Whether output `name` goes back as binary data (asked per output, or for all)."""
        wanted = {o.name: o.parameters for o in self.request.outputs or ()}
        default = self.request.parameters.get("binary_data_output") is True
        return wanted.get(name, {}).get("binary_data", default) is True


def is_oip(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def oip_error(problem: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """A problem as the protocol's error: `{"error": detail}`; invalid input is its 400."""
    status = int(problem["status"])
    return Response(
        orjson.dumps({"error": str(problem.get("detail") or problem.get("title", ""))}),
        status_code=400 if status == 422 else status,
        media_type="application/json",
        headers=headers,
    )


def parse_call(raw: bytes, header_length: str | None) -> InferCall:
    """The request's envelope and tensors; InvalidInput (400) for anything malformed."""
    header, rest = _split(raw, header_length)
    check_shape(header)
    try:
        envelope = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the request is not JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise InvalidInput("the request must be a JSON object")
    request = native(InferRequest, envelope)
    tensors: dict[str, tuple[str, np.ndarray]] = {}
    offset = 0
    for given in request.inputs:
        if given.name in tensors:
            raise InvalidInput(f"input {given.name!r} is given twice")
        array, offset = _decode(given, rest, offset)
        tensors[given.name] = (given.datatype, array)
    if offset != len(rest):
        raise InvalidInput(f"{len(rest) - offset} bytes of binary data belong to no input")
    return InferCall(request, tensors)


def _split(raw: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return raw, b""
    if not header_length.isdigit() or not 0 < int(header_length) <= len(raw):
        raise InvalidInput(f"{HEADER_LENGTH} must be a length within the body's {len(raw)} bytes")
    return raw[: int(header_length)], raw[int(header_length) :]


def _decode(given: InferInput, rest: bytes, offset: int) -> tuple[np.ndarray, int]:
    """One input's values as an array of its shape, and where the next binary input starts."""
    dtype = DTYPES.get(given.datatype)
    if dtype is None:
        raise InvalidInput(f"input {given.name!r}: datatype {given.datatype} is not served")
    count = math.prod(given.shape)
    size = given.parameters.get("binary_data_size")
    if size is None:
        return _from_json(given, dtype, count).reshape(given.shape), offset
    if given.data is not None or not isinstance(size, int) or isinstance(size, bool):
        raise InvalidInput(f"input {given.name!r}: binary_data_size must be a count, without data")
    if size != count * dtype.itemsize or offset + size > len(rest):
        raise InvalidInput(
            f"input {given.name!r}: {list(given.shape)} {given.datatype} is "
            f"{count * dtype.itemsize} bytes; binary_data_size says {size}, "
            f"{len(rest) - offset} remain"
        )
    array = np.frombuffer(rest, dtype.newbyteorder("<"), count, offset)
    return array.astype(dtype).reshape(given.shape), offset + size


def _from_json(given: InferInput, dtype: np.dtype[Any], count: int) -> np.ndarray:
    """JSON data (flat or nested) of the datatype's kind of value: numbers only, integers for
    integer datatypes (3.0 is not an INT64), as many as the shape holds."""
    try:
        values = np.asarray(given.data if given.data is not None else [])
    except ValueError as exc:  # ragged nesting
        raise InvalidInput(f"input {given.name!r}: data is not a regular array") from exc
    kinds = "b" if dtype.kind == "b" else ("iu" if dtype.kind in "iu" else "iuf")
    if values.size and values.dtype.kind not in kinds:
        raise InvalidInput(f"input {given.name!r}: data must be {given.datatype} values")
    if values.size != count:
        raise InvalidInput(
            f"input {given.name!r}: shape {list(given.shape)} holds {count} values, "
            f"data has {values.size}"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # a value that does not fit: below
        cast = values.astype(dtype).reshape(-1)
    if values.size and not np.array_equal(cast, values.reshape(-1)) and dtype.kind in "iu":
        raise InvalidInput(f"input {given.name!r}: values outside {given.datatype}")
    return cast


def encode_answer(
    call: InferCall, head: dict[str, Any], outputs: dict[str, np.ndarray]
) -> tuple[bytes, dict[str, str]]:
    """The response body (JSON, or a JSON header and binary data) and its protocol headers."""
    listed, blobs = [], []
    for name, value in outputs.items():
        array = np.ascontiguousarray(value)
        tensor: dict[str, Any] = {
            "name": name,
            "datatype": DATATYPES[array.dtype],
            "shape": list(array.shape),
        }
        if call.binary(name):
            blob = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = array.reshape(-1)
        listed.append(tensor)
    body = orjson.dumps({**head, "outputs": listed}, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return body, {}
    return b"".join((body, *blobs)), {HEADER_LENGTH: str(len(body))}


def response_head(
    call: InferCall, model: str, version: int, parameters: dict[str, Scalar]
) -> dict[str, Any]:
    head: dict[str, Any] = {"model_name": model, "model_version": str(version)}
    if call.request.id is not None:
        head["id"] = call.request.id
    head["parameters"] = parameters
    return head
