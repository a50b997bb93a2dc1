"""The style routes' request bodies: JSON (the model), or a multipart form whose `images`
files pair in order with `chars` and whose other fields are the JSON fields as text; and how
the OpenAPI describes both (FastAPI cannot, since these routes parse their bodies themselves)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from hanmo_client.schemas import MAX_REFERENCES, StyleCreate, StyleTransferRequest
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from app.errors import InvalidInput, PayloadTooLarge

M = TypeVar("M", bound=BaseModel)
MAX_UPLOAD_BYTES = 3 * 1024 * 1024


def reference_body(model: type[BaseModel]) -> dict[str, Any]:
    """The request body of a route that takes JSON (the model) or a multipart form."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "images": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            },
                            "chars": {
                                "type": "string",
                                "description": "one character per image, in order",
                            },
                        },
                        "additionalProperties": {"type": "string"},
                        "description": "the JSON fields as form fields, images as files",
                    }
                },
            },
        }
    }


def openapi_schemas() -> dict[str, Any]:
    """Component schemas of the bodies these routes parse themselves (JSON or multipart)."""
    out: dict[str, Any] = {}
    for model in (StyleTransferRequest, StyleCreate):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def _validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from exc


async def parse(  # noqa: C901 - two body formats
    request: Request, model: type[M]
) -> tuple[M, list[tuple[bytes, str]] | None]:
    """A JSON body, or a multipart form whose `images` files pair in order with `chars`."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=MAX_REFERENCES + 1, max_fields=32)
        files = [f for f in form.getlist("images") if isinstance(f, UploadFile)]
        data: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        chars = data.pop("chars", "")
        if "formats" in data:
            data["formats"] = [s.strip() for s in str(data["formats"]).split(",") if s.strip()]
        for key in ("size", "version", "timeout_ms", "ttl_s"):
            if key in data and str(data[key]).isdigit():
                data[key] = int(data[key])
        if "sheet" in data:
            data["sheet"] = str(data["sheet"]).lower() in ("1", "true", "yes", "on")
        refs = None
        if files:
            if len(files) > MAX_REFERENCES:
                raise InvalidInput(
                    f"at most {MAX_REFERENCES} reference images", errors=[{"field": "images"}]
                )
            if len(chars) != len(files):
                raise InvalidInput(
                    f"{len(files)} images but {len(chars)} characters in `chars`: "
                    "give one per image",
                    errors=[{"field": "chars"}],
                )
            refs = []
            for f, ch in zip(files, chars, strict=True):
                blob = await f.read(MAX_UPLOAD_BYTES + 1)
                if len(blob) > MAX_UPLOAD_BYTES:
                    raise PayloadTooLarge(f"an image is over {MAX_UPLOAD_BYTES} bytes")
                refs.append((blob, ch))
        return _validate(model, data), refs
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("the body is not JSON (or a multipart form)") from exc
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    return _validate(model, data), None
