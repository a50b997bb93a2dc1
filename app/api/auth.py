"""API keys on the request path: who is calling, what they may do, and how fast.

`Authorization: Bearer hm_…` (or `X-API-Key: hm_…`). Verified keys are cached per process for
`api_key_cache_ttl_s`, never past the key's expiry (a revocation through this process takes
effect at once; other replicas see it within that TTL), so inference does not touch the
database on every request and keeps serving keys it knows while the database is away. Each
key has a token bucket in Redis."""

from __future__ import annotations

import math
import time
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import get_state
from app.api.keycache import KeyCache
from app.api.state import State
from app.errors import DatabaseUnavailable, Forbidden, RateLimited, Unauthorized
from app.queue.errors import REDIS_ERRORS
from app.registry import apikeys
from app.registry.apikeys import Principal

# KEYS[1] bucket hash; ARGV rate/s, burst, now (s). Returns {allowed, seconds to wait}.
TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise Unauthorized("the Authorization header must be `Bearer <API key>`")
    return request.headers.get("x-api-key") or None


async def identify(request: Request, state: State) -> Principal | None:
    """The caller's verified key, None without one; 401 for a bad key."""
    token = _token(request)
    if token is None:
        return None
    if len(token) > 200:
        raise Unauthorized("malformed API key")
    cache: KeyCache = state.keys
    verdict = cache.get(token)
    if verdict is None:

        def check() -> Principal | str:
            with state.sessions() as session:
                return apikeys.verify(session, token)

        try:
            verdict = await anyio.to_thread.run_sync(check)
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable("API keys cannot be checked: the registry is away") from exc
        cache.put(token, verdict, state.settings.api_key_cache_ttl_s)
    if isinstance(verdict, str):
        raise Unauthorized(f"{verdict}")
    request.state.principal = verdict
    return verdict


async def rate_limit(state: State, principal: Principal) -> None:
    settings = state.settings
    try:
        allowed, wait = await state.redis.eval(
            TOKEN_BUCKET,
            1,
            f"hanmo:rate:{principal.key_id}",
            settings.rate_limit_per_s,
            settings.rate_limit_burst,
            f"{time.time():.6f}",
        )
    except REDIS_ERRORS:
        return  # the queue will answer 503 itself; do not refuse on the limiter's account
    if int(allowed) != 1:
        seconds = float(wait)
        raise RateLimited(
            f"key {principal.key_id} is over its rate limit "
            f"({settings.rate_limit_per_s:g}/s, burst {settings.rate_limit_burst})",
            retry_after_s=max(1, math.ceil(seconds)),
        )


async def require_admin(request: Request, state: Annotated[State, Depends(get_state)]) -> Principal:
    principal = await identify(request, state)
    if principal is None:
        raise Unauthorized("admin endpoints need an `admin` API key")
    if not principal.is_admin:
        raise Forbidden(f"key {principal.key_id} has scope `{principal.scope}`, not `admin`")
    return principal


async def inference_guard(
    request: Request, state: Annotated[State, Depends(get_state)]
) -> Principal | None:
    """With keys required: an `infer` or `admin` key, within its rate limit. Without: a key
    is optional (a bad one is still refused) and rate-limited when given."""
    principal = await identify(request, state)
    if principal is None:
        if state.settings.require_api_key:
            raise Unauthorized("this server requires an API key (`Authorization: Bearer hm_…`)")
        request.state.principal = None
        return None
    await rate_limit(state, principal)
    return principal


def owner_of(request: Request, state: State) -> str | None:
    """The key id to record on a job or style (None when keys are not required)."""
    if not state.settings.require_api_key:
        return None
    principal = getattr(request.state, "principal", None)
    return principal.key_id if principal is not None else None


def may_see(request: Request, state: State, owner: str | None) -> bool:
    """Whether the caller may see a job or style owned by `owner`. With keys required, one
    made before they were (no owner) is an admin's only: no key may claim it."""
    if not state.settings.require_api_key:
        return True
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return False
    return principal.is_admin or (bool(owner) and principal.key_id == owner)


AdminDep = Annotated[Principal, Depends(require_admin)]
