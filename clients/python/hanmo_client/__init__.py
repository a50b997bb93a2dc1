"""hanmo-client: a typed Python client for hanmo's HTTP API.

    from hanmo_client import Hanmo

    with Hanmo("http://127.0.0.1:8000", api_key="hm_…") as hanmo:
        result = hanmo.sample("vae-digits", n=16, seed=7, format="grid")
        print(result.version, result.sha256)

`AsyncHanmo` has the same methods for asyncio. The wire schemas (`hanmo_client.schemas`)
are the ones the server validates with; they need only pydantic, so the server imports
them without loading the HTTP client (the names below are loaded on first use)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

if TYPE_CHECKING:
    from hanmo_client.client import AsyncHanmo, Hanmo
    from hanmo_client.errors import ApiError
    from hanmo_client.retry import Retry

__all__ = ["ApiError", "AsyncHanmo", "Hanmo", "Retry", "__version__"]
_HOMES = {"AsyncHanmo": "client", "Hanmo": "client", "ApiError": "errors", "Retry": "retry"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'hanmo_client' has no attribute {name!r}")
    return getattr(importlib.import_module(f"hanmo_client.{_HOMES[name]}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
