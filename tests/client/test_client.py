"""The sync client against a live hanmo: every answer comes back as the shared model, and
what the client reads is what the server sent."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hanmo_client import ApiError, Hanmo
from hanmo_client.schemas import (
    ClassificationCalibration,
    ClassificationPrediction,
    ClassificationRow,
    FontResult,
    InterpolateResponse,
    LogProbResponse,
    Reference,
    RegressionCalibration,
    RegressionPrediction,
    RegressionRow,
    SampleRequest,
    SampleResponse,
    StyleTransferResponse,
)
from pydantic import ValidationError

from tests.helpers import ROOT

CONCRETE_ROW = [300.0, 50.0, 50.0, 180.0, 5.0, 950.0, 750.0, 28.0]
EXAMPLES = ROOT / "docs" / "examples" / "ma-shan-zheng"
REFERENCES = {"永": "yong.png", "和": "he.png", "书": "shu.png", "法": "fa.png"}


@pytest.fixture(scope="module")
def hanmo(served: str) -> Iterator[Hanmo]:
    with Hanmo(served) as client:
        yield client


def test_sample_is_typed_and_the_same_seed_gives_the_same_samples(
    hanmo: Hanmo, served: str
) -> None:
    first = hanmo.sample("tiny-sampler", n=3, seed=7, format="array")
    again = hanmo.sample("tiny-sampler", n=3, seed=7, format="array")
    raw = httpx.post(f"{served}/v1/models/tiny-sampler/sample", json={"n": 3, "seed": 7})
    assert isinstance(first, SampleResponse)
    assert (first.model, first.version, first.seed, first.n) == ("tiny-sampler", 1, 7, 3)
    assert first.samples == again.samples
    assert first.sample_shape == [28, 28]
    assert len(first.sha256) == 64
    assert SampleResponse.model_validate_json(raw.content).seed == 7


def test_interpolate_and_log_prob_are_typed(hanmo: Hanmo) -> None:
    frames = hanmo.interpolate("flow-digits", seeds=[1, 2], steps=3, format="gif")
    scored = hanmo.log_prob("flow-digits", [[0.0] * 64, [1.0] * 64])
    assert isinstance(frames, InterpolateResponse)
    assert frames.animation is not None
    assert frames.frames is None
    assert isinstance(scored, LogProbResponse)
    assert scored.n == 2
    assert all(isinstance(v, float) for v in scored.log_prob)


def test_predictions_feedback_and_calibration_are_typed(hanmo: Hanmo) -> None:
    regression = hanmo.predict("concrete-sghmc", inputs=[CONCRETE_ROW], interval=[0.5, 0.9])
    classification = hanmo.predict("digits-sghmc", inputs=[[0.0] * 64])
    assert isinstance(regression, RegressionPrediction)
    row = regression.predictions[0]
    assert isinstance(row, RegressionRow)
    assert isinstance(row.mean, float)
    assert set(row.interval) == {"0.5", "0.9"}
    assert isinstance(classification, ClassificationPrediction)
    assert isinstance(classification.predictions[0], ClassificationRow)
    assert classification.predictions[0].class_ is not None
    observed = {"prediction_id": regression.prediction_id, "row": 0, "value": 40.0}
    fed = hanmo.feedback("concrete-sghmc", [observed])
    assert (fed.accepted, fed.duplicates) == (1, 0)
    assert isinstance(fed.calibration["1"], RegressionCalibration)
    assert isinstance(hanmo.calibration("digits-sghmc"), ClassificationCalibration)
    assert isinstance(hanmo.calibration("concrete-sghmc", version=1), RegressionCalibration)


def test_style_transfer_saved_styles_and_fonts_are_typed(hanmo: Hanmo) -> None:
    refs = [Reference.from_file(EXAMPLES / name, char) for char, name in REFERENCES.items()]
    written = hanmo.style_transfer("glyph-style", references=refs, text="永和 Ω", sheet=True)
    assert isinstance(written, StyleTransferResponse)
    assert [g.char for g in written.glyphs] == ["永", "和"]
    assert written.unsupported == ["Ω"]
    assert written.sheet is not None
    assert written.style.references == 4
    saved = hanmo.create_style("glyph-style", refs)
    assert hanmo.style(saved.style_id) == saved
    again = hanmo.style_transfer("glyph-style", style_id=saved.style_id, text="永")
    assert again.style.style_id == saved.style_id
    job = hanmo.create_font(saved.style_id, chars="永和")
    finished = hanmo.wait(job.job_id, timeout_s=60)
    font = finished.result_as(FontResult)
    assert (finished.status, font.chars) == ("done", 2)
    assert hanmo.font(job.job_id)[:4] == b"\x00\x01\x00\x00"  # a TrueType file
    hanmo.delete_style(saved.style_id)
    with pytest.raises(ApiError) as gone:
        hanmo.style(saved.style_id)
    assert gone.value.status == 404


def test_an_async_job_gives_the_answer_the_sync_request_gives(hanmo: Hanmo) -> None:
    accepted = hanmo.submit("/v1/models/tiny-sampler/sample", SampleRequest(n=2, seed=11))
    assert accepted.href == f"/v1/jobs/{accepted.job_id}"
    finished = hanmo.wait(accepted.job_id, timeout_s=30)
    direct = hanmo.sample("tiny-sampler", n=2, seed=11)
    assert finished.finished
    assert finished.result_as(SampleResponse).samples == direct.samples


def test_models_are_typed(hanmo: Hanmo) -> None:
    listed = {m.name: m for m in hanmo.models()}
    assert {"tiny-sampler", "glyph-style"} <= set(listed)
    one = hanmo.model("concrete-sghmc")
    assert one == listed["concrete-sghmc"]
    assert (one.kind, one.aliases) == ("predictive", {"production": 1})
    assert one.versions[0].card["name"] == "concrete-sghmc"


def test_refusals_raise_api_error_with_the_problem_document(hanmo: Hanmo) -> None:
    with pytest.raises(ApiError) as unknown:
        hanmo.sample("no-such-model")
    with pytest.raises(ApiError) as invalid:
        hanmo.predict("concrete-sghmc", inputs=[[1.0, 2.0]])
    with pytest.raises(ApiError) as wrong_kind:
        hanmo.predict("tiny-sampler", inputs=[[1.0]])
    assert unknown.value.status == 404
    assert unknown.value.type == "https://hanmo.dev/problems/model-not-found"
    assert unknown.value.title == "Model not found"
    assert "no-such-model" in unknown.value.detail
    assert unknown.value.instance == "/v1/models/no-such-model/sample"
    assert unknown.value.problem["status"] == 404
    assert invalid.value.status == 422
    assert invalid.value.errors == [{"field": "inputs.0"}]
    assert "is a sampler" in wrong_kind.value.detail


def test_options_are_checked_before_anything_is_sent(served: str) -> None:
    sent: list[httpx.Request] = []
    with Hanmo(served, transport=httpx.HTTPTransport()) as hanmo:
        hanmo.http.event_hooks["request"].append(sent.append)
        with pytest.raises(ValidationError):
            hanmo.sample("tiny-sampler", n=0)
        with pytest.raises(ValidationError):
            hanmo.sample("tiny-sampler", shape=3)
    assert sent == []


def test_reconstruct_is_typed(hanmo: Hanmo) -> None:
    from hanmo_client.schemas.autoencoder import ReconstructionRow, ReconstructResponse
    from sklearn.datasets import load_digits

    digit = load_digits().data[0].astype(int).tolist()
    answer = hanmo.reconstruct("bae-digits", inputs=[digit, [16 - v for v in digit]], heatmaps=True)
    assert isinstance(answer, ReconstructResponse)
    real, inverted = answer.reconstructions
    assert isinstance(real, ReconstructionRow)
    assert len(real.epistemic_std) == 64
    assert real.heatmaps is not None
    assert inverted.anomaly_score > real.anomaly_score
    with pytest.raises(ValidationError, match="exactly one"):
        hanmo.reconstruct("bae-digits")  # neither inputs nor images: refused before sending
