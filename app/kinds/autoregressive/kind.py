"""The `autoregressive` kind's record in the catalog."""

from __future__ import annotations

from hanmo_client.schemas import LogProbResponse, SampleResponse

from app.kinds.autoregressive.graph import AutoregressiveKind
from app.kinds.autoregressive.response import render
from app.kinds.autoregressive.signature import AutoregressiveSignature
from app.kinds.spec import JobMeta, KindSpec, RoleSpec, TensorSpec


def _cost(job: JobMeta) -> float:
    """Row-steps: a sample costs one graph row per position it draws; a log-prob row one."""
    rows = float(job.fields.get("n") or 1)
    return rows * float(job.fields.get("steps") or 1)


SPEC = KindSpec(
    name="autoregressive",
    noun="autoregressive model",
    description=(
        "A model that draws a sample one position at a time (PixelCNN): the step graph maps "
        "partial samples to the logits of every position given those before it, in raster "
        "order over signature.shape, with signature.vocabulary levels. The api makes each "
        "step's uniform from the request's seed ((seed, i), position t); the worker batches "
        "steps across requests (a request joins at the next step and leaves when done). One "
        "pass over complete samples gives their exact log-likelihood."
    ),
    signature=AutoregressiveSignature,
    graph=AutoregressiveKind(),
    roles=(
        RoleSpec(
            "step",
            inputs=(
                TensorSpec(
                    "x",
                    "int64",
                    ("N", "prod(shape)"),
                    "partial samples in levels, raster order; positions not drawn yet hold 0 "
                    "and must not influence the logits of any earlier-or-equal position",
                ),
                TensorSpec(
                    "label", "int64", ("N",), "class of each row", optional="signature.classes"
                ),
            ),
            outputs=(
                TensorSpec(
                    "logits",
                    "float32",
                    ("N", "prod(shape)", "vocabulary"),
                    "for every position p, the logits of x[p] given x[<p]; no random ops",
                ),
            ),
        ),
    ),
    render=render,
    cost=_cost,
    answers={"sample": SampleResponse.model_validate, "log_prob": LogProbResponse.model_validate},
    routes=("POST /v1/models/{name}/sample", "POST /v1/models/{name}/log-prob"),
    card_fields_read={
        "signature": "shape, vocabulary, order and classes: the steps, levels and labels",
        "metrics": "shown on the page's Models tab",
        "description": "shown on the page's Models tab",
    },
)
