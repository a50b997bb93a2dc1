"""POST /v1/models/{name}/reconstruct: an autoencoder's reconstructions with per-pixel
uncertainty, the input's log-likelihood and an anomaly score."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from hanmo_client.schemas.common import MAX_ROW_WIDTH, InferenceOptions, Provenance, Real, StrictInt

MAX_RECONSTRUCT_ROWS = 256
MAX_PNG_B64 = 65_536  # characters of base64 per input image
Level = Annotated[StrictInt, Field(ge=0, le=65_535)]


class ReconstructRequest(InferenceOptions):
    inputs: (
        Annotated[
            list[Annotated[list[Level], Field(min_length=1, max_length=MAX_ROW_WIDTH)]],
            Field(min_length=1, max_length=MAX_RECONSTRUCT_ROWS),
        ]
        | None
    ) = Field(
        default=None,
        description="rows of integer pixel levels 0..levels-1 (the card's signature.levels), "
        "row-major over the card's image_shape",
    )
    images: (
        Annotated[
            list[Annotated[str, Field(min_length=1, max_length=MAX_PNG_B64)]],
            Field(min_length=1, max_length=MAX_RECONSTRUCT_ROWS),
        ]
        | None
    ) = Field(
        default=None,
        description="base64 PNGs of exactly the card's image_shape; grey g in 0..255 is level "
        "round(g x (levels-1) / 255) (white = the top level, as the response's PNGs)",
    )
    draws: StrictInt | None = Field(
        default=None, ge=1, le=1_000_000, description="use the first draws (<= S) of the posterior"
    )
    heatmaps: bool = Field(
        default=False,
        description="add base64 PNGs of the reconstruction and of the epistemic and aleatoric "
        "std per row",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ReconstructRequest:
        if (self.inputs is None) == (self.images is None):
            raise ValueError("give exactly one of `inputs` (rows of levels) and `images` (PNGs)")
        return self


class Heatmaps(BaseModel):
    """Greyscale PNGs of the image shape: the reconstruction (white = the top level) and the
    stds, white = (levels-1)/2, the largest std a value in 0..levels-1 can have."""

    reconstruction: str
    epistemic_std: str
    aleatoric_std: str


class ReconstructionRow(BaseModel):
    row: int
    reconstruction: list[Real] = Field(description="the mean over draws of the decoded means")
    epistemic_std: list[Real] = Field(description="per pixel: the std of the draws' means")
    aleatoric_std: list[Real] = Field(
        description="per pixel: the root of the mean decoded variance (the pixel noise)"
    )
    std: list[Real] = Field(description="per pixel: sqrt(epistemic² + aleatoric²)")
    log_likelihood: Real = Field(
        description="log p(x) of the input under the posterior predictive, nats per image: "
        "logsumexp over draws of log p(x | code, θ_s) - log S"
    )
    anomaly_score: Real = Field(description="-log_likelihood: higher is more unlike the data")
    mean_epistemic_std: Real
    mean_aleatoric_std: Real
    heatmaps: Heatmaps | None = None


class ReconstructResponse(Provenance):
    method: str | None = Field(description="how the posterior was drawn, e.g. `sghmc`")
    likelihood: str | None = Field(description="the pixels' likelihood, from the card")
    levels: int
    image_shape: list[int] | None
    draws_total: int = Field(description="S, the posterior draws the model holds")
    draws: int = Field(description="the draws used")
    reconstructions: list[ReconstructionRow]
