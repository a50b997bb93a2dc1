"""The `autoencoder` kind's record in the catalog."""

from __future__ import annotations

from hanmo_client.schemas import SampleResponse
from hanmo_client.schemas.autoencoder import ReconstructResponse

from app.kinds.autoencoder.graph import AutoencoderKind
from app.kinds.autoencoder.response import render
from app.kinds.autoencoder.signature import AutoencoderSignature
from app.kinds.spec import KindSpec, RoleSpec, TensorSpec

SPEC = KindSpec(
    name="autoencoder",
    noun="Bayesian autoencoder",
    description=(
        "A Bayesian autoencoder (an encoder and posterior draws of the decoder's weights, e.g. "
        "SGHMC) exported as one graph that gives all S draws at once; the api summarises them "
        "into the reconstruction with per-pixel epistemic and aleatoric std, the input's "
        "log-likelihood and an anomaly score. With a `decode` graph it samples too: z from the "
        "request's seed through the same draws, each sample's mean image and its uncertainty."
    ),
    signature=AutoencoderSignature,
    graph=AutoencoderKind(),
    roles=(
        RoleSpec(
            "reconstruct",
            inputs=(TensorSpec("x", "float32", ("N", "input_dim"), "rows of pixel levels"),),
            outputs=(
                TensorSpec("mean", "float32", ("S", "N", "input_dim"), "each draw's decoded mean"),
                TensorSpec(
                    "var", "float32", ("S", "N", "input_dim"), "each draw's pixel variance, > 0"
                ),
                TensorSpec("log_lik", "float32", ("S", "N"), "log p(x | code, θ_s) of the input"),
            ),
        ),
        RoleSpec(
            "decode",
            inputs=(
                TensorSpec(
                    "z", "float32", ("N", "latent_dim"), "standard normal noise, by the api"
                ),
            ),
            outputs=(
                TensorSpec("mean", "float32", ("S", "N", "input_dim"), "each draw's decoded mean"),
                TensorSpec(
                    "var", "float32", ("S", "N", "input_dim"), "each draw's pixel variance, > 0"
                ),
            ),
            description="the same S decoders alone, for POST /sample",
            optional="graphs.decode",
        ),
    ),
    render=render,
    cost=lambda job: float(job.rows * job.fields["draws_total"]),  # rows x draws: all S run
    answers={
        "reconstruct": ReconstructResponse.model_validate,
        "sample": SampleResponse.model_validate,
    },
    routes=("POST /v1/models/{name}/reconstruct", "POST /v1/models/{name}/sample"),
    card_fields_read={
        "signature": "input_dim, levels, image_shape, draws, latent_dim, display_scale, method, "
        "likelihood",
        "metrics": "shown on the page's Models tab",
    },
)
