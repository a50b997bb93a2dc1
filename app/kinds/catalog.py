"""Every kind this build serves: one line per kind."""

from __future__ import annotations

from app.errors import ContractViolation
from app.kinds.autoencoder.kind import SPEC as AUTOENCODER
from app.kinds.autoregressive.kind import SPEC as AUTOREGRESSIVE
from app.kinds.predictive.kind import SPEC as PREDICTIVE
from app.kinds.sampler.kind import SPEC as SAMPLER
from app.kinds.spec import KindSpec
from app.kinds.style_transfer.kind import SPEC as STYLE_TRANSFER

KINDS: dict[str, KindSpec] = {
    spec.name: spec for spec in (SAMPLER, PREDICTIVE, STYLE_TRANSFER, AUTOENCODER, AUTOREGRESSIVE)
}


def get_kind(name: str) -> KindSpec:
    """The record of a kind; ContractViolation for a kind this build does not serve."""
    kind = KINDS.get(name)
    if kind is None:
        raise ContractViolation(f"kind {name!r} is not served by this build of hanmo")
    return kind
