"""A predictive model's card signature, typed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictFloat, StrictInt

from app.kinds.signature import Count, Signature


class PredictiveSignature(Signature):
    """`graphs.predict` takes `x` [N, input_dim] float32 and gives, for all S posterior draws
    at once, `mean` and `var` [S, N, K] (regression) or `logits` [S, N, C] (classification)."""

    task: Literal["regression", "classification"] = Field(
        description="regression: outputs mean and var; classification: outputs logits"
    )
    input_dim: Count = Field(description="the row width D: x is [N, D] float32")
    draws: Count = Field(description="S, the posterior draws the graph gives per row")
    features: list[str] | None = Field(
        default=None, description="names of the D inputs: rows may then be sent as objects"
    )
    targets: list[str] | None = Field(default=None, description="names of the K regression outputs")
    target_units: str | None = Field(default=None, description="units of the targets, shown as is")
    classes: list[str] | None = Field(default=None, description="names of the C classes")
    method: str | None = Field(
        default=None, description="how the posterior was drawn: sghmc, ensemble, mc_dropout, ..."
    )
    input_range: tuple[StrictFloat | StrictInt, StrictFloat | StrictInt] | None = Field(
        default=None,
        description="the inputs' range, for the check's random rows when data.feature_summary "
        "is absent",
    )
