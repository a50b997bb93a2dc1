"""The Redis failures that mean "Redis is away" (retry, or answer 503), not "the command was
wrong": the one tuple every part of hanmo catches."""

from __future__ import annotations

from redis import exceptions as redis_errors

REDIS_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)
