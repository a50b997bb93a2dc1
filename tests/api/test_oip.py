"""The Open Inference Protocol v2 (issue 49, item 1) with the official client, tritonclient's
HTTP client, against a live hanmo (uvicorn, a worker thread, Redis, the registry, ONNX
Runtime): metadata from the kinds' contracts, readiness, answers equal to /v1's for the same
seed or rows, keys, and the protocol's error format."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from app.noise import standard_normal_rows
from app.services.registration import register_directory
from app.settings import Settings
from tests.api.test_admin import new_key
from tests.helpers import ROOT, live_api, worker_thread
from training import tiny_predictive, tiny_sampler

STYLE_MODEL = ROOT / "models" / "glyph-style" / "1"
Served = tuple[httpx.Client, triton.InferenceServerClient]


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("oip")
    return [
        tiny_sampler.build(root / "cond", name="tiny-cond", num_labels=3),
        tiny_predictive.build(root / "reg", "regression", "tiny-regression"),
        tiny_predictive.build(root / "cls", "classification", "tiny-classifier"),
    ]


@pytest.fixture
def served(tiny: Settings, model_dirs: list[Path]) -> Settings:
    for directory in model_dirs:
        register_directory(tiny, directory, "production")
    return tiny


@contextmanager
def live(settings: Settings, *, worker: bool = True) -> Iterator[Served]:
    """The api over uvicorn (and a worker thread), with an httpx and a tritonclient client."""
    with live_api(settings) as http:
        client = triton.InferenceServerClient(url=str(http.base_url).removeprefix("http://"))
        try:
            if worker:
                with worker_thread(settings):
                    yield http, client
            else:
                yield http, client
        finally:
            client.close()


def tensor(name: str, value: np.ndarray, datatype: str, binary: bool = True) -> triton.InferInput:
    given = triton.InferInput(name, list(value.shape), datatype)
    given.set_data_from_numpy(value, binary_data=binary)
    return given


def seeded(seed: int, n: int, *, binary: bool = True) -> list[triton.InferInput]:
    return [
        tensor("seed", np.array([seed], np.int64), "INT64", binary),
        tensor("n", np.array([n], np.int64), "INT64", binary),
    ]


def refusal(call: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
    """(status, message) of the InferenceServerException a client call raises."""
    with pytest.raises(InferenceServerException) as caught:
        call(*args, **kwargs)
    return str(caught.value.status()), str(caught.value.message())


def test_health_metadata_and_readiness_follow_the_kinds_contracts(served: Settings) -> None:
    with live(served) as (_, client):
        live_ok, ready_ok = client.is_server_live(), client.is_server_ready()
        sampler = client.get_model_metadata("tiny-sampler")
        pinned = client.get_model_metadata("tiny-cond", model_version="1")
        regression = client.get_model_metadata("tiny-regression")
        classifier = client.get_model_metadata("tiny-classifier")
        model_ready = client.is_model_ready("tiny-sampler")
        version_ready = client.is_model_ready("tiny-sampler", model_version="1")
        server = client.get_server_metadata()
    assert live_ok
    assert ready_ok
    assert model_ready
    assert version_ready
    assert server["name"] == "hanmo"
    assert (sampler["name"], sampler["versions"], sampler["platform"]) == (
        "tiny-sampler",
        ["1"],
        "hanmo_sampler",
    )
    assert sampler["inputs"] == [
        {"name": "seed", "datatype": "INT64", "shape": [1]},
        {"name": "n", "datatype": "INT64", "shape": [1]},
        {"name": "temperature", "datatype": "FP32", "shape": [1]},
        {"name": "z", "datatype": "FP32", "shape": [-1, 16]},
    ]
    assert sampler["outputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 28, 28]}]
    assert {"name": "labels", "datatype": "INT64", "shape": [-1]} in pinned["inputs"]
    assert regression["inputs"][0] == {"name": "x", "datatype": "FP32", "shape": [-1, 3]}
    assert {t["name"]: t["shape"] for t in regression["outputs"]} == {
        "mean": [-1, 1],
        "std": [-1, 1],
        "epistemic_std": [-1, 1],
        "aleatoric_std": [-1, 1],
        "interval": [-1, -1, 1, 2],
        "credible_interval_mean": [-1, -1, 1, 2],
        "mc_standard_error": [-1, 1],
        "mean_draws": [-1, -1, 1],
        "var_draws": [-1, -1, 1],
    }
    assert {t["name"]: t["datatype"] for t in classifier["outputs"]}["label"] == "INT64"
    assert {t["name"]: t["shape"] for t in classifier["outputs"]}["probs"] == [-1, 3]


def test_a_model_without_a_worker_is_not_ready(served: Settings) -> None:
    with live(served, worker=False) as (http, client):
        model_ready = client.is_model_ready("tiny-sampler")
        server_ready = client.is_server_ready()
        answer = http.get("/v2/models/tiny-sampler/ready")
    assert not model_ready
    assert not server_ready
    assert answer.status_code == 503
    assert answer.json() == {"error": "no live worker holds tiny-sampler:1 yet"}


def test_sampler_answers_equal_v1_samples_for_the_same_seed(served: Settings) -> None:
    z_dim = 16
    with live(served) as (http, client):
        native = http.post(
            "/v1/models/tiny-sampler/sample", json={"n": 3, "seed": 11, "format": "array"}
        )
        binary = client.infer("tiny-sampler", seeded(11, 3))
        as_json = client.infer(
            "tiny-sampler",
            seeded(11, 3, binary=False),
            outputs=[triton.InferRequestedOutput("x", binary_data=False)],
            model_version="1",
            request_id="call-1",
        )
        noise = standard_normal_rows(11, 3, z_dim)
        given = client.infer("tiny-sampler", [tensor("z", noise, "FP32")])
        labelled = client.infer(
            "tiny-cond", [*seeded(5, 2), tensor("labels", np.array([2, 0], np.int64), "INT64")]
        )
        native_labelled = http.post(
            "/v1/models/tiny-cond/sample",
            json={"n": 2, "seed": 5, "labels": [2, 0], "format": "array"},
        )
        metrics = http.get("/metrics").text
    assert native.status_code == 200, native.text
    expected = np.asarray(native.json()["samples"], np.float32)
    assert binary.as_numpy("x").dtype == np.float32
    assert np.array_equal(binary.as_numpy("x"), expected)
    assert np.array_equal(as_json.as_numpy("x"), expected)
    assert np.array_equal(given.as_numpy("x"), expected)  # the seed's noise, given as z
    assert np.array_equal(
        labelled.as_numpy("x"), np.asarray(native_labelled.json()["samples"], np.float32)
    )
    response = as_json.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == (
        "tiny-sampler",
        "1",
        "call-1",
    )
    parameters = binary.get_response()["parameters"]
    assert (parameters["seed"], parameters["alias"]) == (11, "production")
    assert parameters["sha256"] == native.json()["sha256"]
    assert "alias" not in response["parameters"]  # pinned by the path's version
    infer = 'method="POST",route="/v2/models/{name}/infer",status="200"'
    assert f"hanmo_http_request_duration_seconds_count{{{infer}}} 3.0" in metrics
    assert 'hanmo_batch_rows_count{alias="production",model="tiny-sampler",version="1"}' in metrics


def predict_both(
    http: httpx.Client, client: triton.InferenceServerClient, name: str, rows: list[list[float]]
) -> tuple[dict[str, Any], triton.InferResult]:
    native = http.post(
        f"/v1/models/{name}/predict",
        json={"inputs": rows, "interval": [0.5, 0.9], "return_draws": True},
    )
    assert native.status_code == 200, native.text
    answer = client.infer(
        name,
        [
            tensor("x", np.asarray(rows, np.float32), "FP32"),
            tensor("interval", np.array([0.5, 0.9]), "FP64", binary=False),
        ],
        parameters={"return_draws": True},
    )
    return native.json(), answer


def test_predictive_answers_equal_v1_predictions(served: Settings) -> None:
    regression_rows = [[0.1, -0.2, 0.3], [1.0, 2.0, -1.0]]
    classifier_rows = [[1.0, 2.0, 3.0, 4.0], [16.0, 0.0, 16.0, 0.0]]
    with live(served) as (http, client):
        native, answer = predict_both(http, client, "tiny-regression", regression_rows)
        native_cls, answer_cls = predict_both(http, client, "tiny-classifier", classifier_rows)
        plain = client.infer(
            "tiny-regression", [tensor("x", np.asarray(regression_rows, np.float32), "FP32")]
        )
        asked = client.infer(
            "tiny-regression",
            [tensor("x", np.asarray(regression_rows, np.float32), "FP32")],
            outputs=[triton.InferRequestedOutput("mean"), triton.InferRequestedOutput("var_draws")],
        )
    rows = native["predictions"]
    for name in ("mean", "std", "epistemic_std", "aleatoric_std", "mc_standard_error"):
        assert answer.as_numpy(name).dtype == np.float64
        assert answer.as_numpy(name)[:, 0].tolist() == [row[name] for row in rows], name
    assert answer.as_numpy("interval")[:, 1, 0].tolist() == [row["interval"]["0.9"] for row in rows]
    assert answer.as_numpy("credible_interval_mean")[:, 0, 0].tolist() == [
        row["credible_interval_mean"]["0.5"] for row in rows
    ]
    assert answer.as_numpy("mean_draws").tolist() == [row["draws"]["mean"] for row in rows]
    assert answer.as_numpy("var_draws").shape == (2, 8, 1)
    assert plain.as_numpy("mean_draws") is None  # draws only on request
    assert plain.as_numpy("interval").shape == (2, 1, 1, 2)  # the default level, 0.9
    assert {o["name"] for o in asked.get_response()["outputs"]} == {"mean", "var_draws"}
    cls_rows = native_cls["predictions"]
    assert answer_cls.as_numpy("probs").tolist() == [row["probs"] for row in cls_rows]
    assert answer_cls.as_numpy("label").tolist() == [row["label"] for row in cls_rows]
    for name in ("entropy", "expected_entropy", "mutual_information", "variation_ratio"):
        assert answer_cls.as_numpy(name).tolist() == [row[name] for row in cls_rows], name
    assert answer_cls.as_numpy("logits_draws").tolist() == [
        row["draws"]["logits"] for row in cls_rows
    ]
    assert answer_cls.get_response()["parameters"]["task"] == "classification"


def test_keys_are_required_on_v2_as_on_v1(served: Settings) -> None:
    keyed = served.model_copy(update={"require_api_key": True})
    key = new_key(keyed, "infer")
    with live(keyed) as (_, client):
        live_ok = client.is_server_live()  # health needs no key, as /livez
        refused = refusal(client.infer, "tiny-sampler", seeded(1, 1))
        metadata = refusal(client.get_model_metadata, "tiny-sampler")
        bad_key = refusal(
            client.infer, "tiny-sampler", seeded(1, 1), headers={"X-API-Key": "hm_nope"}
        )
        answer = client.infer(
            "tiny-sampler", seeded(1, 1), headers={"Authorization": f"Bearer {key}"}
        )
    assert live_ok
    assert refused[0] == metadata[0] == bad_key[0] == "401"
    assert "requires an API key" in refused[1]
    assert answer.as_numpy("x").shape == (1, 28, 28)


def test_bad_requests_get_the_protocols_errors(served: Settings) -> None:
    register_directory(served, STYLE_MODEL, "production")
    with live(served, worker=False) as (http, client):
        wrong_datatype = refusal(
            client.infer, "tiny-sampler", [tensor("seed", np.array([1.0], np.float32), "FP32")]
        )
        wrong_shape = refusal(
            client.infer, "tiny-sampler", [tensor("z", np.zeros((2, 5), np.float32), "FP32")]
        )
        unknown_model = refusal(client.infer, "no-such-model", seeded(1, 1))
        unknown_version = refusal(client.get_model_metadata, "tiny-sampler", model_version="9")
        too_many_samples = refusal(client.infer, "tiny-sampler", seeded(1, 5000))
        too_many_rows = refusal(
            client.infer, "tiny-regression", [tensor("x", np.zeros((4097, 3), np.float32), "FP32")]
        )
        unknown_input = refusal(
            client.infer, "tiny-sampler", [tensor("w", np.zeros(1, np.float32), "FP32")]
        )
        unknown_output = refusal(
            client.infer, "tiny-sampler", seeded(1, 1), outputs=[triton.InferRequestedOutput("y")]
        )
        both = refusal(
            client.infer,
            "tiny-sampler",
            [*seeded(1, 2), tensor("z", np.zeros((2, 16), np.float32), "FP32")],
        )
        style = refusal(client.infer, "glyph-style", seeded(1, 1))
        style_metadata = refusal(client.get_model_metadata, "glyph-style")
        malformed = http.post("/v2/models/tiny-sampler/infer", content=b"{not json")
        short = http.post(
            "/v2/models/tiny-sampler/infer",
            content=b'{"inputs": [{"name": "n", "shape": [2], "datatype": "INT64", "data": [1]}]}',
        )
        fractional = http.post(
            "/v2/models/tiny-sampler/infer",
            json={"inputs": [{"name": "n", "shape": [1], "datatype": "INT64", "data": [1.5]}]},
        )
        n_one = [{"name": "n", "shape": [1], "datatype": "INT64", "data": [1]}]
        no_alias = http.post(
            "/v2/models/tiny-sampler/infer", json={"inputs": n_one, "parameters": {"alias": "x"}}
        )
        bad_alias = http.post(
            "/v2/models/tiny-sampler/infer", json={"inputs": n_one, "parameters": {"alias": 5}}
        )
        bad_version = http.get("/v2/models/tiny-sampler/versions/one")
        huge_version = http.get("/v2/models/tiny-sampler/versions/7209803978/ready")
        nowhere = http.get("/v2/nowhere")
        too_large = http.post("/v2/models/tiny-sampler/infer", content=b" " * (9 * 1024 * 1024))
    assert wrong_datatype[0] == "400"
    assert wrong_datatype[1].startswith("input 'seed' must be INT64 (or INT32, ")
    assert wrong_datatype[1].endswith(", is FP32")
    assert wrong_shape == ("400", "input 'z' must have shape [-1, 16], has [2, 5]")
    assert unknown_model == ("404", "no model named 'no-such-model'")
    assert unknown_version[0] == "404"
    assert too_many_samples[0] == "400"
    assert "n" in too_many_samples[1]
    assert too_many_rows[0] == "400"
    assert "4096" in too_many_rows[1]
    assert unknown_input[0] == "400"
    assert "unknown input 'w'" in unknown_input[1]
    assert unknown_output[0] == "400"
    assert "unknown outputs ['y']" in unknown_output[1]
    assert both[0] == "400"
    assert "either `z`" in both[1]
    assert style[0] == style_metadata[0] == "400"
    assert "serves samplers and predictive models only" in style[1]
    for response in (malformed, short, fractional, no_alias, bad_alias, bad_version, nowhere):
        assert response.status_code in (400, 404), response.text
        assert response.headers["content-type"] == "application/json"
        assert set(response.json()) == {"error"}, response.text
    assert nowhere.status_code == 404
    assert huge_version.status_code == 404  # past a 32-bit version: no overflow in the database
    assert huge_version.json() == {"error": "model 'tiny-sampler' has no version 7209803978"}
    assert no_alias.json() == {"error": "model 'tiny-sampler' has no alias 'x'"}
    assert bad_alias.status_code == 400
    assert "holds 2 values, data has 1" in short.json()["error"]
    assert "must be INT64 values" in fractional.json()["error"]
    assert too_large.status_code == 413
    assert set(too_large.json()) == {"error"}
