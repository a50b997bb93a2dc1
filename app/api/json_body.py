"""Bounds on the shape of a JSON request body, checked on the raw bytes before any parser sees
them: nesting at most MAX_JSON_DEPTH deep and at most MAX_JSON_VALUES values in all.

Python's `json` parser recurses once per level, so `[[[…]]]` 2,000 deep escaped it as a
RecursionError (a 500 and two logged tracebacks); and a body's byte limit alone lets an admin
route (256 MiB for uploads) carry ~130 million values. Every router whose routes take a body
uses `JsonLimitedRoute`, so FastAPI's own parsing, the style routes' `json.loads` and the
admin URI body are all checked in this one place."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
from fastapi import Request
from fastapi.routing import APIRoute
from hanmo_client.schemas import MAX_PREDICT_ROWS, MAX_ROW_WIDTH
from starlette.responses import Response

from app.errors import InvalidInput

# The deepest legitimate body nests 3 levels (predict's rows), a card's free-form fields a few
# more: 64 leaves room for any of them and keeps every parser far from its recursion limit.
MAX_JSON_DEPTH = 64
# The largest legitimate body is a predict request: 4,096 rows of 4,096 values, each row a
# value too, plus its few options. (At the default 8 MiB byte limit a body holds at most
# ~4 million values, so this bites where the byte limit is larger: under /admin.)
MAX_JSON_VALUES = MAX_PREDICT_ROWS * (MAX_ROW_WIDTH + 1) + 1024
# A JSON string (escapes included); unrolled so a 4 MiB base64 image is one tight run.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = np.zeros(256, np.int8)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1


def shape(raw: bytes) -> tuple[int, int]:
    """(nesting depth, an upper bound on the number of values) of a JSON text. Strings are
    cut out first, so brackets and commas inside them do not count."""
    bare = _STRING.sub(b"", raw)
    brackets = bare.translate(None, _NOT_BRACKETS)
    values = 1 + bare.count(b",") + brackets.count(b"[") + brackets.count(b"{")
    if values > MAX_JSON_VALUES:  # refused anyway: skip the depth's arithmetic
        return 0, values
    steps = _STEP[np.frombuffer(brackets, np.uint8)]
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0)), values


def check_shape(raw: bytes) -> None:
    """InvalidInput (422) for a body nested deeper than MAX_JSON_DEPTH or holding more than
    MAX_JSON_VALUES values."""
    depth, values = shape(raw)
    if values > MAX_JSON_VALUES:
        detail = f"the JSON body holds more than {MAX_JSON_VALUES:,} values"
    elif depth > MAX_JSON_DEPTH:
        detail = f"the JSON body nests {depth} levels deep; at most {MAX_JSON_DEPTH} are accepted"
    else:
        return
    raise InvalidInput(detail, errors=[{"field": "body", "message": detail}])


class JsonLimitedRoute(APIRoute):
    """An APIRoute that reads its request's body and checks its shape before the route (or
    FastAPI) parses it; multipart forms are left to their own limits (files, fields, bytes)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            if not request.headers.get("content-type", "").startswith("multipart/"):
                check_shape(await request.body())  # cached on the request: read once
            return await handler(request)

        return checked
