"""The `sampler` kind's record in the catalog."""

from __future__ import annotations

from hanmo_client.schemas import InterpolateResponse, LogProbResponse, SampleResponse

from app.kinds.sampler.graph import SamplerKind
from app.kinds.sampler.oip import OIP
from app.kinds.sampler.response import render
from app.kinds.sampler.signature import SamplerSignature
from app.kinds.spec import KindSpec, RoleSpec, TensorSpec

SPEC = KindSpec(
    name="sampler",
    noun="sampler",
    description=(
        "A generative model with a tractable sampler (VAE decoder, flow, GAN generator): the api "
        "draws noise z from the request's seed, the graph maps it to samples. Sample i depends "
        "only on (version, seed, i)."
    ),
    signature=SamplerSignature,
    graph=SamplerKind(),
    roles=(
        RoleSpec(
            "sample",
            inputs=(
                TensorSpec(
                    "z", "float32", ("N", "z_dim"), "standard normal noise, made by the api"
                ),
                TensorSpec(
                    "label", "int64", ("N",), "class of each row", optional="signature.num_labels"
                ),
            ),
            outputs=(TensorSpec("x", "float32", ("N", "...sample_shape"), "one sample per row"),),
        ),
        RoleSpec(
            "log_prob",
            inputs=(TensorSpec("x", "float32", ("N", "log_prob.input_dim"), "rows to score"),),
            outputs=(TensorSpec("log_prob", "float32", ("N",), "log-density in nats"),),
            optional="signature.log_prob",
        ),
    ),
    render=render,
    oip=OIP,
    cost=lambda job: float(job.fields.get("n") or job.fields.get("steps") or 1),  # rows
    answers={
        "sample": SampleResponse.model_validate,
        "interpolate": InterpolateResponse.model_validate,
        "log_prob": LogProbResponse.model_validate,
    },
    routes=(
        "POST /v1/models/{name}/sample",
        "POST /v1/models/{name}/interpolate",
        "POST /v1/models/{name}/log-prob",
    ),
    card_fields_read={
        "signature": "every field: noise width, labels, sample shape, image display",
        "metrics": "shown on the page's Models tab",
        "description": "shown on the page's Models tab",
    },
)
