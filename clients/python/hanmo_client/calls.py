"""The public API's calls (`/v1`), each defined once as a flow (see `hanmo_client.flow`):
it builds its request from the pydantic models the server validates with and says how to
read the answer. `Hanmo` and `AsyncHanmo` inherit them as methods."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter

from hanmo_client.flow import Call, Flow, nothing, single
from hanmo_client.runners import endpoint
from hanmo_client.schemas import (
    Calibration,
    ClassificationCalibration,
    ClassificationPrediction,
    FeedbackRequest,
    FeedbackResponse,
    FontRequest,
    InterpolateRequest,
    InterpolateResponse,
    JobAccepted,
    JobRead,
    LogProbRequest,
    LogProbResponse,
    ModelList,
    ModelRead,
    Observation,
    PredictRequest,
    PredictResponse,
    Reference,
    RegressionCalibration,
    RegressionPrediction,
    SampleRequest,
    SampleResponse,
    StyleCreate,
    StyleRead,
    StyleTransferRequest,
    StyleTransferResponse,
)
from hanmo_client.schemas.autoencoder import ReconstructRequest, ReconstructResponse

T = TypeVar("T")
CALIBRATION: TypeAdapter[RegressionCalibration | ClassificationCalibration] = TypeAdapter(
    Calibration
)
PREDICTION: TypeAdapter[RegressionPrediction | ClassificationPrediction] = TypeAdapter(
    PredictResponse
)


def body(model: BaseModel) -> dict[str, Any]:
    """A request model as the JSON the server expects (unset options left out)."""
    return model.model_dump(mode="json", exclude_none=True, by_alias=True)


def post(path: str, request: BaseModel, read: Callable[[bytes], T], **headers: str) -> Flow[T]:
    return single(Call("POST", path, read, json=body(request), headers=headers or None))


def get(path: str, read: Callable[[bytes], T], **params: Any) -> Flow[T]:
    return single(Call("GET", path, read, params=params or None))


def job_state(job_id: str) -> Flow[JobRead]:
    return get(f"/v1/jobs/{job_id}", JobRead.model_validate_json)


def _models(content: bytes) -> list[ModelRead]:
    return ModelList.model_validate_json(content).models


class Calls:
    """The public API. Each is a plain function of its arguments (see `endpoint`)."""

    # -- inference -----------------------------------------------------------------------------

    @endpoint
    def sample(model: str, **options: Any) -> Flow[SampleResponse]:
        """Draw `n` samples (options: SampleRequest's fields); sample i depends only on the
        model version, the seed and i, so the same seed gives the same samples."""
        request = SampleRequest(**options)
        return post(f"/v1/models/{model}/sample", request, SampleResponse.model_validate_json)

    @endpoint
    def interpolate(model: str, **options: Any) -> Flow[InterpolateResponse]:
        """Frames along a latent path between two seeds or two codes (InterpolateRequest)."""
        path, request = f"/v1/models/{model}/interpolate", InterpolateRequest(**options)
        return post(path, request, InterpolateResponse.model_validate_json)

    @endpoint
    def log_prob(
        model: str, rows: Sequence[Sequence[float]], **options: Any
    ) -> Flow[LogProbResponse]:
        """Log-density (nats) and bits/dim of each row, for samplers that export a density."""
        request = LogProbRequest(rows=[list(row) for row in rows], **options)
        return post(f"/v1/models/{model}/log-prob", request, LogProbResponse.model_validate_json)

    @endpoint
    def predict(
        model: str, **options: Any
    ) -> Flow[RegressionPrediction | ClassificationPrediction]:
        """The posterior predictive of each row of `inputs` (PredictRequest's fields): a
        RegressionPrediction or a ClassificationPrediction, as the model's task is."""
        request = PredictRequest(**options)
        return post(f"/v1/models/{model}/predict", request, PREDICTION.validate_json)

    @endpoint
    def reconstruct(model: str, **options: Any) -> Flow[ReconstructResponse]:
        """An autoencoder's reconstruction of each row of `inputs` (or PNG of `images`) with its
        per-pixel epistemic and aleatoric std, log p(x) and anomaly score (ReconstructRequest's
        fields)."""
        path, request = f"/v1/models/{model}/reconstruct", ReconstructRequest(**options)
        return post(path, request, ReconstructResponse.model_validate_json)

    @endpoint
    def style_transfer(model: str, **options: Any) -> Flow[StyleTransferResponse]:
        """Write `text` in the style of `references` or a saved `style_id`
        (StyleTransferRequest's fields)."""
        path, request = f"/v1/models/{model}/style-transfer", StyleTransferRequest(**options)
        return post(path, request, StyleTransferResponse.model_validate_json)

    @endpoint
    def submit(path: str, request: BaseModel) -> Flow[JobAccepted]:
        """POST `request` to an inference `path` with `Prefer: respond-async`: the job."""
        return post(path, request, JobAccepted.model_validate_json, Prefer="respond-async")

    # -- jobs ----------------------------------------------------------------------------------

    @endpoint
    def job(job_id: str) -> Flow[JobRead]:
        """A job's state; once `done`, its result (`JobRead.result_as(SampleResponse)`)."""
        return job_state(job_id)

    @endpoint
    def wait(job_id: str, timeout_s: float = 60.0, poll_s: float = 0.1) -> Flow[JobRead]:
        """Poll a job until it has finished (done, failed or cancelled) or `timeout_s` has
        passed; its last state either way."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = yield from job_state(job_id)
            if state.finished or time.monotonic() > deadline:
                return state
            yield poll_s

    @endpoint
    def cancel(job_id: str) -> Flow[None]:
        """Cancel a job no worker has started (ApiError 409 once it runs)."""
        return single(Call("DELETE", f"/v1/jobs/{job_id}", nothing))

    # -- models, feedback ----------------------------------------------------------------------

    @endpoint
    def models() -> Flow[list[ModelRead]]:
        """Every registered model with its versions, aliases and cards."""
        return get("/v1/models", _models)

    @endpoint
    def model(name: str) -> Flow[ModelRead]:
        return get(f"/v1/models/{name}", ModelRead.model_validate_json)

    @endpoint
    def feedback(
        model: str, observations: Sequence[Observation | dict[str, Any]]
    ) -> Flow[FeedbackResponse]:
        """Observed outcomes of rows a /predict answered; all are stored, or none."""
        request = FeedbackRequest.model_validate({"observations": list(observations)})
        path = f"/v1/models/{model}/feedback"
        return post(path, request, FeedbackResponse.model_validate_json)

    @endpoint
    def calibration(
        model: str, version: int | None = None, alias: str | None = None
    ) -> Flow[RegressionCalibration | ClassificationCalibration]:
        """A predictive model version's running calibration from all its feedback."""
        chosen = {k: v for k, v in (("version", version), ("alias", alias)) if v is not None}
        return get(f"/v1/models/{model}/calibration", CALIBRATION.validate_json, **chosen)

    # -- saved styles and fonts ----------------------------------------------------------------

    @endpoint
    def create_style(
        model: str, references: Sequence[Reference], **options: Any
    ) -> Flow[StyleRead]:
        """Save a style (the references' style code, computed once) for later requests."""
        request = StyleCreate(model=model, references=list(references), **options)
        return post("/v1/styles", request, StyleRead.model_validate_json)

    @endpoint
    def style(style_id: str) -> Flow[StyleRead]:
        return get(f"/v1/styles/{style_id}", StyleRead.model_validate_json)

    @endpoint
    def delete_style(style_id: str) -> Flow[None]:
        return single(Call("DELETE", f"/v1/styles/{style_id}", nothing))

    @endpoint
    def create_font(style_id: str, **options: Any) -> Flow[JobAccepted]:
        """Start a font job in a saved style (FontRequest); `wait` for it, then `font`."""
        path = f"/v1/styles/{style_id}/font"
        return post(path, FontRequest(**options), JobAccepted.model_validate_json)

    @endpoint
    def font(job_id: str) -> Flow[bytes]:
        """A finished font job's TrueType file."""
        ttf = {"Accept": "font/ttf"}
        return single(Call("GET", f"/v1/jobs/{job_id}", bytes, headers=ttf))
