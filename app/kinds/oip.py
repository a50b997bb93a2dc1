"""What a kind says to serve itself over the Open Inference Protocol (KServe v2, Triton's HTTP
API): its protocol tensors (names, OIP datatypes, shapes with -1 for a free size), how a call's
tensors become the kind's native request (so the native checks and `prepare` run unchanged),
and how a finished job becomes named output tensors. Pure: no web framework, no Redis.

The api's side (the wire format, the routes) is app/api/oip_wire.py and app/api/routes/oip.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
from hanmo_client.schemas import InferenceOptions
from pydantic import BaseModel, ValidationError

from app.errors import InvalidInput

if TYPE_CHECKING:
    from app.kinds.spec import Finished, Inputs, JobMeta, Served

Scalar = bool | int | float | str  # an OIP parameter's value
# OIP datatype -> NumPy dtype, for the datatypes a hanmo tensor may have (BYTES and BF16 are
# valid OIP datatypes that no hanmo tensor takes: refused by name, app/api/oip_wire.py)
DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(dtype)
    for name, dtype in (
        ("BOOL", "bool"),
        ("UINT8", "uint8"),
        ("UINT16", "uint16"),
        ("UINT32", "uint32"),
        ("UINT64", "uint64"),
        ("INT8", "int8"),
        ("INT16", "int16"),
        ("INT32", "int32"),
        ("INT64", "int64"),
        ("FP16", "float16"),
        ("FP32", "float32"),
        ("FP64", "float64"),
    )
}
DATATYPES = {dtype: name for name, dtype in DTYPES.items()}
M = TypeVar("M", bound=BaseModel)
MAX_ERRORS = 10  # field errors named in one answer (a 4,096-row x may break every row)
INTEGERS = ("INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8")


@dataclass(frozen=True, slots=True)
class TensorMeta:
    """One protocol tensor as model metadata lists it. `accepts`: other datatypes an input
    takes (cast when every value survives); `on_request`: an output sent only when asked."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    accepts: tuple[str, ...] = ()
    on_request: bool = False

    def listed(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True, slots=True)
class OipCall:
    """An infer call as a kind sees it: input tensors checked against its metadata (and cast
    to their listed dtype), the kind's own parameters, the routing options for its native
    request, and the outputs asked for by name (None: the defaults)."""

    tensors: Mapping[str, np.ndarray]
    parameters: Mapping[str, Scalar]
    options: Mapping[str, Any]
    wanted: frozenset[str] | None


Prepare = Callable[["Served"], tuple["Inputs", "JobMeta"]]


class OipKind(Protocol):
    parameters: tuple[str, ...]  # the kind's own request parameters

    def inputs(self, signature: dict[str, Any]) -> tuple[TensorMeta, ...]: ...

    def outputs(self, signature: dict[str, Any]) -> tuple[TensorMeta, ...]: ...

    def request(self, call: OipCall, max_rows: int) -> tuple[InferenceOptions, Prepare, int]:
        """(the native request, its prepare, its rows): what the native route would run."""

    def answer(
        self, meta: dict[str, Any], outcome: Finished
    ) -> tuple[dict[str, np.ndarray], dict[str, Scalar]]:
        """A finished job's output tensors (rows first) and response parameters."""


def checked_inputs(
    listed: tuple[TensorMeta, ...], given: Mapping[str, tuple[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Given tensors (name -> (datatype, array)) checked against the listed inputs: known
    names, an accepted datatype, the listed rank and fixed sizes; cast to the listed dtype."""
    by_name = {meta.name: meta for meta in listed}
    checked = {}
    for name, (datatype, array) in given.items():
        meta = by_name.get(name)
        if meta is None:
            raise InvalidInput(f"unknown input {name!r}; this model takes {sorted(by_name)}")
        if datatype not in (meta.datatype, *meta.accepts):
            takes = meta.datatype + (f" (or {', '.join(meta.accepts)})" if meta.accepts else "")
            raise InvalidInput(f"input {name!r} must be {takes}, is {datatype}")
        fits = len(array.shape) == len(meta.shape) and all(
            want in (-1, size) for want, size in zip(meta.shape, array.shape, strict=True)
        )
        if not fits:
            raise InvalidInput(
                f"input {name!r} must have shape {list(meta.shape)}, has {list(array.shape)}"
            )
        checked[name] = _cast(name, array, DTYPES[meta.datatype])
    return checked


def _cast(name: str, array: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):  # a value that does not fit: refused
        cast = array.astype(dtype, copy=False)
    if cast is not array and not np.array_equal(cast, array):
        raise InvalidInput(f"input {name!r} holds values outside {DATATYPES[dtype]}")
    return cast


def native(model: type[M], fields: dict[str, Any], names: Mapping[str, str] | None = None) -> M:
    """The kind's native request from protocol values, checked by its own model: a field it
    refuses is invalid input (400 over the protocol), named as the protocol names it (`names`:
    native field -> protocol tensor, where they differ)."""
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        renamed = names or {}
        errors = [
            {"field": ".".join(str(renamed.get(str(p), p)) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors()[:MAX_ERRORS]
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise InvalidInput(detail, errors=errors) from exc


def scalar(tensors: Mapping[str, np.ndarray], name: str) -> Any:
    """A one-element input as a Python number, None when absent."""
    value = tensors.get(name)
    if value is None:
        return None
    if value.size != 1:
        raise InvalidInput(f"input {name!r} must hold one value, holds {value.size}")
    return value.reshape(-1)[0].item()
