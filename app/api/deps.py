"""Dependencies of the routes, as Annotated aliases ending in Dep."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from app.api.state import State


async def get_state(request: Request) -> State:  # async: no thread-pool hop per request
    state: State = request.app.state.hanmo
    return state


StateDep = Annotated[State, Depends(get_state)]
PreferDep = Annotated[str | None, Header(description="`respond-async` for 202 + Location")]
IdempotencyKeyDep = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="the same key maps to one job",
    ),
]
AcceptDep = Annotated[str | None, Header()]
