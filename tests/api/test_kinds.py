"""GET /v1/kinds publishes the contract `hanmo models check` enforces: every shipped card is
valid against its kind's published JSON Schema, a card that breaks it is not, and the OpenAPI
document carries the same card schemas."""

from __future__ import annotations

import json
from typing import get_args

import jsonschema
import pytest
from hanmo_client.schemas.models import Kind

from app.api.main import create_app
from app.kinds.catalog import KINDS
from app.services.registration import shipped_model_dirs
from app.settings import Settings
from tests.helpers import ROOT, live_api

CARDS = [json.loads((v[-1] / "card.json").read_text()) for v in shipped_model_dirs(ROOT / "models")]


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory, redis_url: str, database_url: str) -> dict:  # type: ignore[type-arg]
    from tests.helpers import fresh_settings

    settings = fresh_settings(tmp_path_factory.mktemp("kinds"), redis_url, database_url)
    with live_api(settings) as client:
        response = client.get("/v1/kinds")
    assert response.status_code == 200, response.text
    return {entry["kind"]: entry for entry in response.json()["kinds"]}


def test_every_kind_is_listed_with_its_roles_and_tensors(kinds: dict) -> None:  # type: ignore[type-arg]
    served = {"sampler", "predictive", "style_transfer", "autoencoder", "autoregressive"}
    assert set(kinds) == set(KINDS) == served
    sample = next(r for r in kinds["sampler"]["roles"] if r["role"] == "sample")
    z = next(t for t in sample["inputs"] if t["name"] == "z")
    assert (z["dtype"], z["shape"]) == ("float32", ["N", "z_dim"])
    predict = kinds["predictive"]["roles"][0]
    assert {t["name"]: t["shape"] for t in predict["outputs"]}["logits"] == ["S", "N", "C"]
    assert "data.feature_summary" in kinds["predictive"]["card_fields_read"]
    assert set(get_args(Kind)) == set(KINDS)  # what GET /v1/models and the admin API accept
    reconstruct = kinds["autoencoder"]["roles"][0]
    assert {t["name"]: t["shape"] for t in reconstruct["outputs"]}["log_lik"] == ["S", "N"]
    assert kinds["style_transfer"]["signature_schema"]["required"] == [
        "size",
        "style_dim",
        "struct_dim",
        "chars",
    ]


@pytest.mark.parametrize("card", CARDS, ids=[c["name"] for c in CARDS])
def test_shipped_cards_meet_the_published_schema(kinds: dict, card: dict) -> None:  # type: ignore[type-arg]
    jsonschema.validate(card, kinds[card["kind"]]["card_schema"])


def test_a_card_breaking_the_contract_fails_the_published_schema(kinds: dict) -> None:  # type: ignore[type-arg]
    card = next(c for c in CARDS if c["kind"] == "sampler")
    broken = {**card, "signature": {**card["signature"], "z_dim": 0}}
    with pytest.raises(jsonschema.ValidationError, match="z_dim"):
        jsonschema.validate(broken, kinds["sampler"]["card_schema"])
    missing = {**card, "signature": {k: v for k, v in card["signature"].items() if k != "z_dim"}}
    with pytest.raises(jsonschema.ValidationError, match="z_dim"):
        jsonschema.validate(missing, kinds["sampler"]["card_schema"])


def test_openapi_has_the_card_schemas(settings: Settings) -> None:
    spec = create_app(settings).openapi()
    components = spec["components"]["schemas"]
    assert {"SamplerCard", "PredictiveCard", "StyleTransferCard", "ModelCard"} <= set(components)
    mapping = components["ModelCard"]["discriminator"]["mapping"]
    assert set(mapping) == set(KINDS)
    assert "/v1/kinds" in spec["paths"]
