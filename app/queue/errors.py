"""The Redis failures that mean "Redis is away" (retry, or answer 503), not "the command was
wrong": the one tuple every part of hanmo catches. READONLY is a master demoted by a
failover (Sentinel): redis-py's sentinel pool already turns it into a ConnectionError and drops
the connection; a plain `redis://` client pointed at a demoted master gets it as it is."""

from __future__ import annotations

from redis import exceptions as redis_errors

REDIS_ERRORS = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    OSError,
)
