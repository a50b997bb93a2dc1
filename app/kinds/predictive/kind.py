"""The `predictive` kind's record in the catalog."""

from __future__ import annotations

from hanmo_client.schemas import PredictResponse
from pydantic import TypeAdapter

from app.kinds.predictive.graph import PredictiveKind
from app.kinds.predictive.oip import OIP
from app.kinds.predictive.response import render
from app.kinds.predictive.signature import PredictiveSignature
from app.kinds.spec import KindSpec, RoleSpec, TensorSpec

SPEC = KindSpec(
    name="predictive",
    keeps_results=True,  # feedback scores the draws a prediction got
    noun="predictive model",
    description=(
        "A Bayesian model (SGHMC samples, a deep ensemble, MC dropout, ...) exported as one graph "
        "that gives all S posterior draws at once; the api summarises them into the posterior "
        "predictive with epistemic and aleatoric parts."
    ),
    signature=PredictiveSignature,
    graph=PredictiveKind(),
    roles=(
        RoleSpec(
            "predict",
            inputs=(TensorSpec("x", "float32", ("N", "input_dim"), "rows of features"),),
            outputs=(
                TensorSpec(
                    "mean", "float32", ("S", "N", "K"), "each draw's mean", optional="regression"
                ),
                TensorSpec(
                    "var",
                    "float32",
                    ("S", "N", "K"),
                    "each draw's noise variance, > 0",
                    optional="regression",
                ),
                TensorSpec(
                    "logits",
                    "float32",
                    ("S", "N", "C"),
                    "each draw's class logits",
                    optional="classification",
                ),
            ),
        ),
    ),
    render=render,
    oip=OIP,
    cost=lambda job: float(job.rows * job.fields["draws_total"]),  # rows x draws: all S run
    answers={"predict": TypeAdapter(PredictResponse).validate_python},
    routes=("POST /v1/models/{name}/predict", "POST /v1/models/{name}/feedback"),
    card_fields_read={
        "signature": "task, input_dim, draws, features, targets, target_units, classes, method",
        "data.feature_summary": "per feature {min, median, max}: the page's input form and the "
        "check's random rows",
        "metrics": "shown on the page's Models tab",
    },
)
