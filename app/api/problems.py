"""RFC 9457 problem responses: one renderer for every error, never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.api.oip_wire import is_oip, oip_error
from app.errors import HanmoError, RedisUnavailable
from app.logs import REQUEST_ID
from app.queue.errors import REDIS_ERRORS

log = logging.getLogger("hanmo.api")
PROBLEM_JSON = "application/problem+json"


def problem_response(
    problem: dict[str, Any], instance: str, headers: dict[str, str] | None = None
) -> Response:
    """The problem as `application/problem+json`; under /v2 (the Open Inference Protocol) as
    that protocol's `{"error": detail}`, with 400 for invalid input (app/api/oip_wire.py)."""
    headers = dict(headers or {})
    retry_after = problem.get("retry_after_s")
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    if is_oip(instance):
        return oip_error(problem, headers)
    return Response(
        orjson.dumps(problem_document(problem, instance)),
        status_code=int(problem["status"]),
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def problem_document(problem: dict[str, Any], instance: str) -> dict[str, Any]:
    """The problem as a response carries it: with its `instance` and the request's id."""
    body = {"instance": instance, **problem}
    request_id = REQUEST_ID.get()
    if request_id:  # the request's (app/api/access.py), also in its log lines and headers
        body["request_id"] = request_id
    return body


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "field": ".".join(str(p) for p in err.get("loc", ())),
            "message": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]


async def _hanmo_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HanmoError)
    headers = {"WWW-Authenticate": 'Bearer realm="hanmo"'} if exc.status == 401 else None
    return problem_response(exc.problem(), request.url.path, headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    fields = ", ".join(sorted({e["field"] for e in errors}))
    problem = {
        "type": "https://hanmo.dev/problems/invalid-input",
        "title": "Invalid input",
        "status": 422,
        "detail": f"invalid fields: {fields}",
        "errors": errors,
    }
    return problem_response(problem, request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    problem = {
        "type": "about:blank",
        "title": _reason(exc.status_code),
        "status": exc.status_code,
        "detail": str(exc.detail),
    }
    return problem_response(problem, request.url.path, dict(exc.headers or {}))


async def _redis_away(request: Request, exc: Exception) -> Response:
    """A Redis failure a route did not turn into a problem itself (e.g. during a Sentinel
    failover, before the new master is known): 503, never 500."""
    log.warning("api.redis_away path=%s error=%r", request.url.path, exc)
    away = RedisUnavailable("Redis cannot be reached (restarting or failing over); retry shortly")
    return problem_response(away.problem(), request.url.path)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("api.unhandled path=%s", request.url.path, exc_info=exc)
    problem = {
        "type": "https://hanmo.dev/problems/internal",
        "title": "Internal error",
        "status": 500,
        "detail": "an unexpected error occurred; it has been logged",
    }
    # sent by Starlette's outermost middleware, outside the one that adds the header
    request_id = REQUEST_ID.get()
    headers = {"X-Request-Id": request_id} if request_id else None
    return problem_response(problem, request.url.path, headers)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install(app: FastAPI) -> None:
    app.add_exception_handler(HanmoError, _hanmo_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for away in REDIS_ERRORS:
        if away is not OSError:  # Redis's own errors; a bare OSError stays a 500
            app.add_exception_handler(away, _redis_away)
    app.add_exception_handler(Exception, _unexpected)
