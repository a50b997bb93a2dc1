"""Predictive models: /predict, /feedback and /calibration, requests and answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hanmo_client.schemas.common import (
    MAX_ROW_WIDTH,
    FiniteFloat,
    InferenceOptions,
    Provenance,
    Real,
    StrictInt,
)

MAX_PREDICT_ROWS = 4096
MAX_LEVELS = 9
Level = Annotated[float, Field(gt=0.0, lt=1.0, allow_inf_nan=False)]
# One target's value, or one per target for a multi-target model.
Values = Real | list[Real]
Bounds = list[Real] | list[list[Real]]


class PredictRequest(InferenceOptions):
    inputs: (
        list[Annotated[list[FiniteFloat], Field(min_length=1, max_length=MAX_ROW_WIDTH)]]
        | list[Annotated[dict[str, FiniteFloat], Field(min_length=1, max_length=MAX_ROW_WIDTH)]]
    ) = Field(
        min_length=1,
        max_length=MAX_PREDICT_ROWS,
        description="rows of features in the card's order, or objects of named features",
    )
    interval: Level | Annotated[list[Level], Field(min_length=1, max_length=MAX_LEVELS)] = Field(
        default=0.9, description="central interval level(s), each in (0, 1)"
    )
    draws: StrictInt | None = Field(
        default=None, ge=1, le=1_000_000, description="use the first draws (<= S) of the posterior"
    )
    return_draws: bool = Field(default=False, description="include each draw's outputs")


class RegressionRow(BaseModel):
    """One row's posterior predictive; per target where the model has several."""

    row: int
    mean: Values
    std: Values
    epistemic_std: Values = Field(description="the part of std from disagreeing draws")
    aleatoric_std: Values = Field(description="the part of std from the noise each draw predicts")
    interval: dict[str, Bounds] = Field(description="level -> [lower, upper] of the mixture")
    credible_interval_mean: dict[str, Bounds] = Field(description="level -> interval of the mean")
    mc_standard_error: Values
    draws: dict[str, list[Any]] | None = Field(
        default=None, description="each draw's outputs (`return_draws`)"
    )


class ClassificationRow(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    row: int
    probs: list[Real]
    label: int
    class_: str | None = Field(alias="class", description="the label's name, if the card has one")
    max_prob: Real
    entropy: Real = Field(description="predictive entropy (nats)")
    expected_entropy: Real = Field(description="the mean entropy of the draws (aleatoric)")
    mutual_information: Real = Field(description="entropy - expected_entropy (epistemic)")
    variation_ratio: Real
    draws: dict[str, list[Any]] | None = Field(
        default=None, description="each draw's outputs (`return_draws`)"
    )


class Prediction(Provenance):
    """What every /predict answer carries besides its rows."""

    prediction_id: str = Field(description="names these rows in /feedback")
    method: str | None = Field(description="how the posterior was drawn, e.g. `sghmc`")
    draws_total: int = Field(description="S, the posterior draws the model holds")
    draws: int = Field(description="the draws used")


class RegressionPrediction(Prediction):
    task: Literal["regression"]
    predictions: list[RegressionRow]


class ClassificationPrediction(Prediction):
    task: Literal["classification"]
    predictions: list[ClassificationRow]


# The answer of /predict; `task` says which (isinstance narrows it).
PredictResponse = Annotated[
    RegressionPrediction | ClassificationPrediction, Field(discriminator="task")
]


# -- calibration feedback ----------------------------------------------------------------------


class Observation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: str = Field(pattern=r"^[0-9a-f]{24}$", description="a /predict response's id")
    row: StrictInt = Field(ge=0, lt=MAX_PREDICT_ROWS, description="the row's index in it")
    value: FiniteFloat | None = Field(default=None, description="regression: the observed value")
    label: StrictInt | Annotated[str, Field(max_length=128)] | None = Field(
        default=None, description="classification: class index or name"
    )


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    observations: list[Observation] = Field(min_length=1, max_length=1024)


class CoverageLevel(BaseModel):
    observed: Real = Field(description="share of observations inside the interval")
    band: list[float] = Field(description="where a calibrated model's coverage stays (95%)")
    ok: bool


class RegressionCalibration(BaseModel):
    model: str
    version: int
    task: Literal["regression"]
    count: int
    nll: Real
    coverage: dict[str, CoverageLevel] = Field(description="per interval level")
    pit_histogram: list[int]
    warnings: list[str]


class ReliabilityBin(BaseModel):
    bin: list[float]
    count: int
    accuracy: float
    confidence: float


class ClassificationCalibration(BaseModel):
    model: str
    version: int
    task: Literal["classification"]
    count: int
    nll: Real
    accuracy: Real
    ece: Real = Field(description="expected calibration error")
    reliability: list[ReliabilityBin]
    warnings: list[str]


Calibration = Annotated[
    RegressionCalibration | ClassificationCalibration, Field(discriminator="task")
]


class FeedbackScore(BaseModel):
    prediction_id: str
    row: int
    nll: Real
    pit: Real = Field(description="regression: where the observation fell in the predictive")


class FeedbackResponse(BaseModel):
    accepted: int
    duplicates: int = Field(description="observations already fed back (kept once)")
    scores: list[FeedbackScore]
    calibration: dict[str, Calibration] = Field(description="version -> its calibration now")
