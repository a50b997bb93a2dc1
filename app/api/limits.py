"""A request-body limit as ASGI middleware: 413 before the body is read past the limit.

A declared Content-Length over the limit is refused before the app runs; a chunked body is
counted as it arrives and refused once it passes the limit (FastAPI re-raises an
HTTPException from `receive`, and the problem handler renders it)."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import problem_response
from app.errors import PayloadTooLarge


class BodyLimit:
    """`max_body_bytes` for every request, except paths under an `overrides` prefix (artifact
    uploads under /admin), which get their own limit."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, overrides: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.overrides = overrides or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = next(
            (n for prefix, n in self.overrides.items() if path.startswith(prefix)),
            self.max_body_bytes,
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, receive, send, limit)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"the request body exceeds {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        error = PayloadTooLarge(f"the request body exceeds {limit} bytes")
        response = problem_response(error.problem(), scope.get("path", ""))
        await response(scope, receive, send)
