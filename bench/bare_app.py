"""The ceiling of bench/peer.py: a bare Starlette endpoint in one uvicorn process that answers
every POST with hanmo's answer, the same JSON bytes, encoded per request with orjson from NumPy
arrays. No validation, no queue, no model: what one Python HTTP process can answer with those
bytes, against which hanmo is given as a fraction.

    HANMO_BARE_ANSWER=answer.json python -m uvicorn bench.bare_app:app --port PORT

`answer.json` holds one of hanmo's answers; its lists of floats become float64 arrays (float64
holding the float32 values, which orjson writes as hanmo writes `tolist()`'s Python floats), the
other fields stay as they are. Each request's body is read and parsed, and the answer encoded anew.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def load(path: Path) -> dict[str, Any]:
    """hanmo's answer with its lists as NumPy arrays."""
    answer: dict[str, Any] = orjson.loads(path.read_bytes())
    return {name: _array(value) for name, value in answer.items()}


def _array(value: Any) -> Any:
    """A list of floats (nested) as a float64 array; anything else as it is."""
    if isinstance(value, list):
        array = np.asarray(value)
        if array.dtype == np.float64:
            return array
    return value


def encode(answer: dict[str, Any]) -> bytes:
    return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)


ANSWER = load(Path(os.environ["HANMO_BARE_ANSWER"]))


async def predict(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(encode(ANSWER), media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
