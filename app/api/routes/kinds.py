"""GET /v1/kinds: the contract a model must meet, published (what `hanmo models check`
checks): each kind's card and signature as JSON Schema, its graph roles with their tensors,
and the card fields the api and the page read."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from hanmo_client.schemas import KindList
from starlette.responses import Response

from app.api.inference import checked_response
from app.kinds.catalog import KINDS
from app.kinds.spec import KindSpec
from app.registry.cards import CARDS, card_model

router = APIRouter(tags=["models"])
REF = "#/components/schemas/{model}"


def kind_entry(spec: KindSpec) -> dict[str, Any]:
    return {
        "kind": spec.name,
        "noun": spec.noun,
        "description": spec.description,
        "routes": list(spec.routes),
        "roles": [
            {
                **asdict(role),
                "inputs": [{**asdict(t), "shape": list(t.shape)} for t in role.inputs],
                "outputs": [{**asdict(t), "shape": list(t.shape)} for t in role.outputs],
            }
            for role in spec.roles
        ],
        "card_schema": card_model(spec.name).model_json_schema(),
        "signature_schema": spec.signature.model_json_schema(),
        "card_fields_read": dict(spec.card_fields_read),
    }


@router.get("/v1/kinds", response_model=KindList)
async def list_kinds() -> Response:
    """Every kind this server serves, with the contract its models meet."""
    body = {"kinds": [kind_entry(spec) for spec in KINDS.values()]}
    return checked_response(KindList.model_validate, body)


def openapi_schemas() -> dict[str, Any]:
    """The cards of every kind (a union on `kind`) as OpenAPI components."""
    schema = CARDS.json_schema(ref_template=REF)
    components: dict[str, Any] = schema.pop("$defs", {})
    components["ModelCard"] = schema
    return components
