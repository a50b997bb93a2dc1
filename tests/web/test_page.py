"""The web page in a real browser: Playwright drives Debian's Chromium against a live uvicorn
api and a real worker serving the shipped models (the `make up` stack, in one process).

What the page shows is checked against what the API answers for the same request: glyphs and
sample grids pixel for pixel, errors by the problem's own title and detail. With
HANMO_SCREENSHOT_DIR set (`make screenshots`), the screenshot test writes the README's
pictures there; otherwise into its temporary directory."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from app.settings import Settings
from tests.api.test_admin import new_key
from tests.api.test_style_transfer import supported_text
from tests.helpers import live_api
from tests.web.support import MODELS, PIXELS, UNSERVED, demo_references, rgba, write


def test_written_glyphs_are_pixel_identical_to_the_api(page: Any, server: httpx.Client) -> None:
    text = "王小明好"
    write(page, str(server.base_url), text)
    images = page.locator("#glyphs img")
    assert images.count() == 4
    shown = {img.get_attribute("data-char"): img.evaluate(PIXELS) for img in images.all()}

    answer = server.post(
        "/v1/models/glyph-style/style-transfer",
        json={"references": demo_references(), "text": text},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [g["char"] for g in body["glyphs"]] == list(text)
    for glyph in body["glyphs"]:
        assert shown[glyph["char"]] == rgba(base64.b64decode(glyph["png"])), glyph["char"]
    # the style's confidence, shown once and labelled as the style's (every glyph carries it)
    assert {g["confidence"] for g in body["glyphs"]} == {body["confidence"]}
    shown_confidence = page.inner_text("#write-confidence")
    assert shown_confidence.startswith(f"Style confidence {body['confidence']:.2f}:")
    assert page.locator("#glyphs figcaption").all_inner_texts() == list(text)
    assert page.locator("#download-png").get_attribute("href").startswith("blob:")


def test_sample_grid_returns_to_identical_pixels(page: Any, server: httpx.Client) -> None:
    page.goto(f"{server.base_url}/#sample")
    grid = page.locator("#sample-grid[data-seed='7']")
    grid.wait_for()
    assert page.input_value("#sample-model") == "cvae-digits"
    first = grid.evaluate(PIXELS)

    page.fill("#sample-seed", "8")
    page.locator("#sample-grid[data-seed='8']").wait_for()
    other = page.locator("#sample-grid").evaluate(PIXELS)
    assert other != first

    page.fill("#sample-seed", "7")
    page.locator("#sample-grid[data-seed='7']").wait_for()
    assert page.locator("#sample-grid").evaluate(PIXELS) == first

    # and it is the API's grid for the same request
    body = {"n": 36, "seed": 7, "format": "grid", "labels": [i % 10 for i in range(36)]}
    answer = server.post("/v1/models/cvae-digits/sample", json=body)
    assert answer.status_code == 200, answer.text
    assert first == rgba(base64.b64decode(answer.json()["grid"]))

    page.click("#interp-go")
    page.locator("#interp-strip img").nth(9).wait_for()
    assert page.locator("#interp-strip img").count() == 10

    assert page.locator("#sample-label-box").is_visible()  # cvae-digits is conditional
    page.select_option("#sample-model", "vae-digits")
    page.locator("#sample-caption", has_text=re.compile(r"^vae-digits v1")).wait_for()
    assert page.locator("#sample-label-box").is_hidden()


def test_api_errors_render_as_their_problem(
    page: Any, server: httpx.Client, tmp_path: Path
) -> None:
    page.goto(f"{server.base_url}/#sample")
    page.locator("#sample-grid[data-seed='7']").wait_for()
    page.fill("#sample-seed", "-1")
    problem = page.locator("#sample-problem")
    problem.wait_for()
    assert problem.locator(".problem-title").inner_text() == "Invalid input (422)"
    assert "seed" in problem.inner_text()

    # a reference that is not an image: the page shows the API's own title and detail
    page.goto(f"{server.base_url}/")
    page.locator("#refs li img").nth(3).wait_for()
    page.click("#ref-clear")
    fake = tmp_path / "永.png"
    fake.write_bytes(b"not an image")
    page.set_input_files("#ref-upload", str(fake))
    page.locator("#refs li").nth(0).wait_for()
    assert page.input_value("#refs li input") == "永"  # the file name says which character
    page.click("#write-go")
    problem = page.locator("#write-problem")
    problem.wait_for()
    want = server.post(
        "/v1/styles",
        json={
            "model": "glyph-style",
            "references": [{"image": base64.b64encode(b"not an image").decode(), "char": "永"}],
        },
    ).json()
    assert problem.locator(".problem-title").inner_text() == f"{want['title']} ({want['status']})"
    assert problem.locator(".problem-detail").inner_text() == want["detail"]
    assert page.locator("#glyphs img").count() == 0


def draw_digit(page: Any) -> None:
    box = page.locator("#digit-pad").bounding_box()
    x, y = box["x"], box["y"]
    page.mouse.move(x + 60, y + 40)
    page.mouse.down()
    for dx, dy in ((130, 40), (120, 90), (85, 165)):
        page.mouse.move(x + dx, y + dy, steps=8)
    page.mouse.up()


def test_every_tab_renders_and_is_saved_as_a_screenshot(
    page: Any, server: httpx.Client, tmp_path: Path
) -> None:
    out = Path(os.environ.get("HANMO_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    write(page, str(server.base_url), "翰墨飘香")
    page.screenshot(path=out / "write.png", full_page=True)

    page.click("#tab-sample")
    page.locator("#sample-grid[src^='data:']").wait_for()
    page.click("#interp-go")
    page.locator("#interp-strip img").nth(9).wait_for()
    page.screenshot(path=out / "sample.png", full_page=True)

    page.click("#tab-uncertainty")
    page.locator("#reg-plot svg path.mean").wait_for()
    assert page.locator("#reg-plot svg path.epistemic").count() == 1
    assert page.locator("#reg-plot svg path.total").count() == 1
    draw_digit(page)
    page.locator("#cls-facts").wait_for()
    assert "mutual information" in page.inner_text("#cls-facts")
    assert page.locator("#cls-result .probs .fill").count() == 10
    page.locator("#ae-facts").wait_for()  # the same digit through the Bayesian autoencoder
    assert page.locator("#ae-result img[data-heatmap=epistemic_std]").count() == 1
    page.screenshot(path=out / "uncertainty.png", full_page=True)

    page.click("#tab-models")
    cards = page.locator("#models .model")
    cards.nth(len(MODELS) - 1).wait_for()
    assert sorted(c.get_attribute("data-model") for c in cards.all()) == sorted(MODELS)
    assert page.locator("#models-unserved .model").get_attribute("data-model") == UNSERVED
    page.locator(".model img.samples[src^='data:']").nth(1).wait_for()  # both samplers drew
    page.screenshot(path=out / "models.png", full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.click("#tab-write")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scroll
    page.screenshot(path=out / "phone.png")
    for name in ("write", "sample", "uncertainty", "models", "phone"):
        assert (out / f"{name}.png").stat().st_size > 10_000, name


def test_a_drawn_reference_becomes_a_saved_style(page: Any, server: httpx.Client) -> None:
    page.goto(f"{server.base_url}/")
    page.locator("#refs li img").nth(3).wait_for()
    page.click("#ref-clear")
    page.click("#draw-box summary")
    box = page.locator("#ref-pad").bounding_box()
    x, y = box["x"], box["y"]
    for stroke in (((60, 70), (200, 70)), ((130, 30), (130, 230)), ((70, 150), (190, 150))):
        page.mouse.move(x + stroke[0][0], y + stroke[0][1])
        page.mouse.down()
        page.mouse.move(x + stroke[1][0], y + stroke[1][1], steps=10)
        page.mouse.up()
    page.fill("#ref-pad-char", "丰")
    page.click("#ref-pad-add")
    page.locator("#refs li img").wait_for()
    assert page.locator("#refs li").count() == 1
    assert page.input_value("#refs li input") == "丰"
    assert page.inner_text("#ref-count") == "1 of 16"

    page.click("#write-save")
    style_id = page.locator("#saved-style-id").inner_text()
    saved = server.get(f"/v1/styles/{style_id}")
    assert saved.status_code == 200, saved.text
    assert saved.json()["model"] == "glyph-style"
    assert saved.json()["chars"] == "丰"
    assert saved.json()["references"] == 1


def test_characters_the_model_cannot_write_are_listed_not_errors(
    page: Any, server: httpx.Client
) -> None:
    text = "王Ω小"
    write(page, str(server.base_url), text)
    want = server.post(
        "/v1/models/glyph-style/style-transfer",
        json={"references": demo_references(), "text": text},
    ).json()
    assert want["unsupported"] == ["Ω"]
    assert page.locator("#write-problem").is_hidden()
    assert page.locator("#glyphs img").count() == 2
    assert page.locator("#glyphs .cell.unsupported").inner_text() == "Ω"
    assert page.inner_text("#write-unsupported") == "The model cannot write: Ω"


def test_a_key_typed_into_the_page_opens_a_server_that_requires_one(
    page: Any, stack: tuple[Settings, httpx.Client]
) -> None:
    settings, _ = stack
    key = new_key(settings, "infer")
    with live_api(settings.model_copy(update={"require_api_key": True})) as keyed:
        page.goto(f"{keyed.base_url}/")
        problem = page.locator("#write-problem")
        problem.wait_for()
        want = keyed.get("/v1/models").json()
        assert problem.locator(".problem-title").inner_text() == "Unauthorized (401)"
        assert problem.locator(".problem-detail").inner_text() == want["detail"]

        page.click(".key summary")
        page.fill("#api-key", key)
        page.press("#api-key", "Enter")  # the page starts again with the key
        page.locator("#refs li img").nth(3).wait_for()
        page.fill("#write-text", "王")
        page.click("#write-go")
        page.locator("#glyphs img").wait_for()
        assert page.locator("#write-problem").is_hidden()


def test_an_uploaded_digit_is_read_as_its_8x8_levels(
    page: Any, server: httpx.Client, tmp_path: Path
) -> None:
    """The page crops a digit to its ink and centres it in 8x8, as the data were made: a digit
    whose ink is already centred reads back as its own levels, every digit is classified as what
    it is, and what the page shows is the API's answer for the levels it sent."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    page.goto(f"{server.base_url}/#uncertainty")
    page.locator("#reg-plot svg").wait_for()
    for i in (3, 5, 11):
        levels = digits.images[i].astype(int)
        ink = (255 - levels * 255 // 16).astype(np.uint8)  # dark ink on white paper
        path = tmp_path / f"digit-{i}.png"
        Image.fromarray(ink).resize((120, 120), Image.Resampling.NEAREST).save(path)
        page.set_input_files("#digit-upload", str(path))
        page.locator("#cls-facts dd", has_text=f"{digits.target[i]} (p = ").wait_for()
        preview = np.asarray(
            page.locator("#digit-preview").evaluate(
                "(c) => Array.from(c.getContext('2d').getImageData(0, 0, 64, 64).data)"
            )
        ).reshape(64, 64, 4)[4::8, 4::8, 0]
        sent = np.round(16 * (1 - preview / 255)).astype(int)
        box = levels >= 4  # the page's ink: darker than 200 of 255; it crops to that box
        cols = np.nonzero(box.any(axis=0))[0]
        lo, hi = cols.min(), cols.max()
        whole = not levels[:, :lo].any() and not levels[:, hi + 1 :].any()  # no faint ink outside
        if box[0].any() and box[7].any() and lo + hi == 7 and whole:  # centred, full height
            assert np.array_equal(sent, levels), i
        want = server.post(
            "/v1/models/digits-sghmc/predict", json={"inputs": [sent.ravel().tolist()]}
        ).json()["predictions"][0]
        assert want["class"] == str(digits.target[i])
        shown = f"{want['class']} (p = {want['max_prob']:.3f})"
        assert page.locator("#cls-facts dd").first.inner_text() == shown, i


def test_api_docs_render_offline_from_installed_assets(page: Any, server: httpx.Client) -> None:
    """/docs (Swagger UI) and /redoc draw the OpenAPI with scripts served by hanmo itself:
    any request to another host is aborted, so a CDN script would leave a blank page. (ReDoc's
    footer asks its CDN for a logo image; aborted, the page is the same but for that logo.)"""
    base = str(server.base_url).rstrip("/")
    outside: list[str] = []

    def only_local(route: Any) -> None:
        if route.request.url.startswith(base):
            route.continue_()
            return
        if route.request.resource_type != "image":
            outside.append(route.request.url)
        route.abort()

    page.route("**/*", only_local)
    page.goto(f"{base}/docs")
    page.locator(".swagger-ui .info .title", has_text="hanmo").wait_for()
    assert page.locator(".opblock-summary-path", has_text="/v1/models/{name}/sample").count()
    page.goto(f"{base}/redoc")
    page.locator("h1", has_text="hanmo").wait_for()
    assert page.get_by_text("/v1/models/{name}/predict").count()
    assert not outside, outside


# every change in the count of written glyph images, and when the status said the text was done
COUNTS = """() => {
  window.hanmoCounts = [];
  window.hanmoDoneAt = null;
  const glyphs = document.getElementById("glyphs");
  new MutationObserver(() => {
    const n = glyphs.querySelectorAll("img").length;
    const seen = window.hanmoCounts;
    if (!seen.length || seen[seen.length - 1][0] !== n) seen.push([n, performance.now()]);
  }).observe(glyphs, { childList: true, subtree: true });
  const status = document.getElementById("write-status");
  new MutationObserver(() => {
    if (/written in this style/.test(status.textContent) && window.hanmoDoneAt === null) {
      window.hanmoDoneAt = performance.now();
    }
  }).observe(status, { childList: true, characterData: true, subtree: true });
}"""


def test_streamed_glyphs_appear_one_by_one(page: Any, server: httpx.Client) -> None:
    """The Write tab reads the style request's Server-Sent Events: 200 characters are 13
    chunks of the worker's 16 glyphs, and the page shows more glyphs at several observations
    before the text is done."""
    text = supported_text(500)[300:]
    page.goto(f"{server.base_url}/")
    page.locator("#refs li img").nth(3).wait_for()
    page.fill("#write-text", text)
    page.evaluate(COUNTS)
    with page.expect_request(lambda r: r.url.endswith("/style-transfer")) as sent:
        page.click("#write-go")
    page.locator("#write-downloads:not([hidden])").wait_for(timeout=120_000)
    counts = page.evaluate("window.hanmoCounts")
    done_at = page.evaluate("window.hanmoDoneAt")
    assert sent.value.headers["accept"] == "text/event-stream"
    assert page.locator("#glyphs img").count() == 200
    partway = [n for n, at in counts if 0 < n < 200 and at < done_at]
    assert len(partway) >= 3, counts  # glyphs appeared in steps, not all at the end
    assert [n for n, _ in counts] == sorted(n for n, _ in counts)


def test_without_fetch_streaming_the_page_writes_from_the_json_answer(
    page: Any, server: httpx.Client
) -> None:
    page.add_init_script("delete window.ReadableStream;")  # a browser that cannot stream
    with page.expect_request(lambda r: r.url.endswith("/style-transfer")) as sent:
        write(page, str(server.base_url), "王小明好")
    assert sent.value.headers["accept"] == "application/json"
    assert page.locator("#glyphs img").count() == 4
    assert page.locator("#write-problem").is_hidden()
