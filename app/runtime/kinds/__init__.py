"""Kind contracts: what graphs a kind needs, how to check them, how to run a batch."""

from __future__ import annotations

from app.errors import ContractViolation
from app.runtime.kinds.base import Kind
from app.runtime.kinds.predictive import PredictiveKind
from app.runtime.kinds.sampler import SamplerKind
from app.runtime.kinds.style import StyleTransferKind

KINDS: dict[str, Kind] = {
    "sampler": SamplerKind(),
    "predictive": PredictiveKind(),
    "style_transfer": StyleTransferKind(),
}


def get_kind(name: str) -> Kind:
    """The contract of a kind; ContractViolation for a kind this build does not serve."""
    kind = KINDS.get(name)
    if kind is None:
        raise ContractViolation(f"kind {name!r} is not served by this build of hanmo")
    return kind
