"""The Uncertainty tab's autoencoder (issue 51, item 5): a drawn or uploaded digit goes through
the served Bayesian autoencoder too, and the page shows the API's own heatmaps and score for the
8x8 levels it sent."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from tests.web.support import PIXELS, rgba


def sent_levels(page: Any) -> list[int]:
    """The 8x8 levels the page sent, read back from its preview (level 16 = black)."""
    preview = np.asarray(
        page.locator("#digit-preview").evaluate(
            "(c) => Array.from(c.getContext('2d').getImageData(0, 0, 64, 64).data)"
        )
    ).reshape(64, 64, 4)[4::8, 4::8, 0]
    return np.round(16 * (1 - preview / 255)).astype(int).ravel().tolist()


def test_an_uploaded_digit_shows_its_reconstruction_heatmaps_and_score(
    page: Any, server: httpx.Client, tmp_path: Path
) -> None:
    from sklearn.datasets import load_digits

    page.goto(f"{server.base_url}/#uncertainty")
    page.locator("#reg-plot svg").wait_for()
    assert page.input_value("#ae-model") == "bae-digits"
    levels = load_digits().images[3].astype(int)
    ink = (255 - levels * 255 // 16).astype(np.uint8)  # dark ink on white paper
    path = tmp_path / "digit.png"
    Image.fromarray(ink).resize((120, 120), Image.Resampling.NEAREST).save(path)
    page.set_input_files("#digit-upload", str(path))
    page.locator("#ae-facts").wait_for()
    answer = server.post(
        "/v1/models/bae-digits/reconstruct",
        json={"inputs": [sent_levels(page)], "heatmaps": True},
    )
    assert answer.status_code == 200, answer.text
    row = answer.json()["reconstructions"][0]
    assert page.locator("#ae-facts dd").first.inner_text() == f"{row['anomaly_score']:.1f} nats"
    for key in ("reconstruction", "epistemic_std", "aleatoric_std"):
        shown = page.locator(f"#ae-result img[data-heatmap={key}]").evaluate(PIXELS)
        assert shown == rgba(base64.b64decode(row["heatmaps"][key])), key


def test_the_sample_tab_offers_the_autoencoder_and_shows_its_mean_images(
    page: Any, server: httpx.Client
) -> None:
    """bae-digits has a decode graph, so the Sample tab lists it; its grid is the API's grid
    for the same request, pixel for pixel, and the caption gives the draws' epistemic std."""
    page.goto(f"{server.base_url}/#sample")
    page.locator("#sample-grid[data-seed]").wait_for()
    assert "bae-digits" in page.locator("#sample-model option").all_inner_texts()
    page.fill("#sample-seed", "11")
    page.select_option("#sample-model", "bae-digits")
    page.locator("#sample-caption", has_text="bae-digits v1 · seed 11").wait_for()
    assert "decoder draws, epistemic std" in page.inner_text("#sample-caption")
    n = int(page.input_value("#sample-n"))
    temperature = float(page.input_value("#sample-temp"))
    body = {"n": n, "seed": 11, "temperature": temperature, "format": "grid"}
    answer = server.post("/v1/models/bae-digits/sample", json=body)
    assert answer.status_code == 200, answer.text
    shown = page.locator("#sample-grid").evaluate(PIXELS)
    assert shown == rgba(base64.b64decode(answer.json()["grid"]))
