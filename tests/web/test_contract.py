"""The page follows the API's contract: it offers only models a request that names no version
reaches (the `production` alias names a READY version) and lists the others apart with why;
it labels the style's confidence as the style's, showing a confidence on a glyph only when
the glyph carries its own; and a date is laid out on one line."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.web.support import MODELS, UNSERVED, write

# the height of a cell's laid-out contents, and of the first cell in its row (one short word)
HEIGHTS = """(cell) => {
  const height = (node) => {
    const range = document.createRange();
    range.selectNodeContents(node);
    return range.getBoundingClientRect().height;
  };
  return [height(cell), height(cell.parentElement.firstElementChild)];
}"""


def test_a_model_no_alias_serves_is_listed_apart_and_not_offered(
    page: Any, server: httpx.Client
) -> None:
    listed = {m["name"]: m for m in server.get("/v1/models").json()["models"]}
    assert listed[UNSERVED]["kind"] == "sampler"
    assert listed[UNSERVED]["aliases"] == {}

    page.goto(f"{server.base_url}/#sample")
    page.locator("#sample-grid[data-seed='7']").wait_for()
    offered = page.locator("#sample-model option").evaluate_all("(os) => os.map((o) => o.value)")
    # the served samplers, then bae-digits (an autoencoder with a decode graph samples too)
    assert offered == ["cvae-digits", "vae-digits", "bae-digits"]
    note = page.inner_text("#sample-unserved")
    assert UNSERVED in note, note
    assert "promote" in note, note

    page.click("#tab-models")
    page.locator("#models .model").nth(len(MODELS) - 1).wait_for()
    assert page.locator(f"#models .model[data-model='{UNSERVED}']").count() == 0
    card = page.locator(f"#models-unserved .model[data-model='{UNSERVED}']")
    assert card.locator(".note").inner_text().startswith("no production alias serves this model;")
    assert "promote" in card.locator(".note").inner_text()
    assert card.locator("img.samples").count() == 0  # it cannot draw: no request is sent


def test_a_glyph_shows_a_confidence_only_when_it_is_its_own(
    page: Any, server: httpx.Client
) -> None:
    """The API's glyphs carry the style's confidence (the same figure); were one to carry its
    own, that glyph's caption shows it. The streamed answer is the API's with 小's figure
    changed."""

    def own_confidence(route: Any) -> None:
        if route.request.headers.get("accept") != "text/event-stream":  # the text's sheet
            route.continue_()
            return
        answer = route.fetch()
        events = answer.text().split("\n\n")
        for i, event in enumerate(events):
            head, _, data = event.rpartition("data: ")
            if "event: glyph" in head and json.loads(data)["char"] == "小":
                events[i] = head + "data: " + json.dumps({**json.loads(data), "confidence": 0.25})
        route.fulfill(response=answer, body="\n\n".join(events))

    page.route("**/v1/models/glyph-style/style-transfer", own_confidence)
    write(page, str(server.base_url), "王小")
    captions = page.locator("#glyphs figcaption").all_inner_texts()
    assert captions == ["王", "小 · confidence 0.25"]
    assert page.inner_text("#write-confidence").startswith("Style confidence ")


def test_dates_are_laid_out_on_one_line(page: Any, server: httpx.Client) -> None:
    """Three cards a row at 1100 px: each version's `created` date keeps to one line."""
    page.goto(f"{server.base_url}/#models")
    page.locator("#models .model").nth(len(MODELS) - 1).wait_for()
    versions = page.locator(".model table:has(th:text-is('created'))")  # version, status, created
    dates = versions.locator("tr:has(td) > :nth-child(3)")
    assert dates.count() == len(MODELS) + 1
    for cell in dates.all():
        assert cell.inner_text()[:2] == "20", cell.inner_text()
        height, line = cell.evaluate(HEIGHTS)
        assert abs(height - line) < 1, (cell.inner_text(), height, line)
