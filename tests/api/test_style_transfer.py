"""Style transfer end to end on the shipped model: real workers, real ONNX Runtime, real
Redis, real HTTP through a live uvicorn. References are the Ma Shan Zheng glyphs of the
README's example (docs/examples), rendered from a font that the model never trained on."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from skimage.metrics import structural_similarity

from app import glyphs
from app.registry.cards import read_card
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import ROOT, live_api, worker_thread

MODEL = ROOT / "models" / "glyph-style" / "1"
EXAMPLES = ROOT / "docs" / "examples" / "ma-shan-zheng"
REFS = {"永": "yong.png", "和": "he.png", "书": "shu.png", "法": "fa.png"}
URL = "/v1/models/glyph-style/style-transfer"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def references(n: int = 4) -> list[dict[str, str]]:
    return [
        {"image": b64((EXAMPLES / f).read_bytes()), "char": c} for c, f in list(REFS.items())[:n]
    ]


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def served(settings: Settings) -> Settings:
    register_directory(settings, MODEL, "production")
    return settings


def supported_text(n: int) -> str:
    return read_card(MODEL).signature.chars[:n]


def test_writes_text_in_the_references_style(served: Settings) -> None:
    chars = read_card(MODEL).signature.chars
    text = chars[10] + chars[11] + " " + chars[10] + "Ω"  # a repeat, a space, one it cannot write
    with worker_thread(served), live_api(served) as client:
        response = client.post(
            URL,
            json={
                "references": references(),
                "text": text,
                "formats": ["png", "svg"],
                "sheet": True,
            },
        )
        sheet = client.post(
            URL, json={"references": references(), "text": text}, headers={"Accept": "image/png"}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [g["char"] for g in body["glyphs"]] == [chars[10], chars[11]]
    assert body["unsupported"] == ["Ω"]
    assert body["version"] == 1
    assert body["model"] == "glyph-style"
    assert 0.0 <= body["confidence"] <= 1.0
    assert body["style"]["references"] == 4
    for g in body["glyphs"]:
        image = Image.open(io.BytesIO(base64.b64decode(g["png"])))
        assert image.size == (128, 128)
        assert image.mode == "L"
        ink = 1.0 - np.asarray(image, np.float32) / 255.0
        assert 0.02 < ink.mean() < 0.6  # a glyph, neither blank nor a blot
        assert g["svg"].startswith("<svg")
        assert ' d="M' in g["svg"]
    assert Image.open(io.BytesIO(base64.b64decode(body["sheet"]))).size[0] > 2 * 128
    assert sheet.status_code == 200
    assert sheet.headers["content-type"] == "image/png"


def test_multipart_upload_matches_json(served: Settings) -> None:
    text = supported_text(3)
    files = [("images", (f, (EXAMPLES / f).read_bytes(), "image/png")) for f in REFS.values()]
    with worker_thread(served), live_api(served) as client:
        as_json = client.post(URL, json={"references": references(), "text": text}).json()
        as_form = client.post(URL, data={"text": text, "chars": "".join(REFS)}, files=files)
        style = client.post(
            "/v1/styles", data={"model": "glyph-style", "chars": "".join(REFS)}, files=files
        )
        empty = client.post("/v1/styles", json={"model": "glyph-style"})
    assert as_form.status_code == 200, as_form.text
    assert [g["png"] for g in as_form.json()["glyphs"]] == [g["png"] for g in as_json["glyphs"]]
    assert style.status_code == 201, style.text
    assert style.json()["chars"] == "".join(REFS)
    assert empty.status_code == 422


def test_saved_style_is_reused_and_deleted(served: Settings) -> None:
    text = supported_text(2)
    with worker_thread(served), live_api(served) as client:
        created = client.post(
            "/v1/styles", json={"model": "glyph-style", "references": references(), "ttl_s": 600}
        )
        assert created.status_code == 201, created.text
        style = created.json()
        assert style["style_id"].startswith("st_")
        assert style["version"] == 1
        assert style["references"] == 4
        assert client.get(f"/v1/styles/{style['style_id']}").json()["chars"] == "".join(REFS)
        by_id = client.post(URL, json={"style_id": style["style_id"], "text": text}).json()
        by_refs = client.post(URL, json={"references": references(), "text": text}).json()
        assert [g["png"] for g in by_id["glyphs"]] == [g["png"] for g in by_refs["glyphs"]]
        assert by_id["style"] == {"style_id": style["style_id"], "version": 1, "recomputed": False}
        assert client.delete(f"/v1/styles/{style['style_id']}").status_code == 204
        gone = client.post(URL, json={"style_id": style["style_id"], "text": text})
        assert gone.status_code == 404
        assert gone.headers["content-type"] == "application/problem+json"
        assert client.get(f"/v1/styles/{style['style_id']}").status_code == 404


def test_a_style_follows_its_alias_to_a_new_version(served: Settings, tmp_path: Path) -> None:
    """Version 2 takes `production`: the saved style is recomputed from its stored
    references (or, with on_stale=fail, refused with 409)."""
    import shutil

    import onnx

    from app.registry.cards import sha256_file

    copy = tmp_path / "glyph-style-2"
    shutil.copytree(MODEL, copy)
    graph = onnx.load(str(copy / "encoder.onnx"))
    graph.doc_string = "version 2: the same weights, other bytes"
    onnx.save(graph, str(copy / "encoder.onnx"))
    card = json.loads((copy / "card.json").read_text())
    card["graphs"]["encoder"]["sha256"] = sha256_file(copy / "encoder.onnx")
    card["signature"]["em_ratio"] = 0.84  # the frame before 0.75: stored references are refitted
    (copy / "card.json").write_text(json.dumps(card))
    text = supported_text(1)
    with worker_thread(served), live_api(served) as client:
        style = client.post(
            "/v1/styles", json={"model": "glyph-style", "references": references()}
        ).json()
        register_directory(served, copy, "production")
        deadline = time.monotonic() + 15
        while client.get("/v1/models/glyph-style").json().get("aliases", {}).get("production") != 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(2.5)  # the api's registry cache
        refused = client.post(
            URL, json={"style_id": style["style_id"], "text": text, "on_stale": "fail"}
        )
        again = client.post(URL, json={"style_id": style["style_id"], "text": text})
        stored = client.get(f"/v1/styles/{style['style_id']}").json()
    assert refused.status_code == 409, refused.text
    assert again.status_code == 200, again.text
    assert again.json()["style"]["recomputed"] is True
    assert again.json()["version"] == 2
    assert stored["version"] == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.update(references=[]), "references"),
        (lambda b: b.update(references=references() * 5), "references"),
        (
            lambda b: b["references"][0].update(image=b64(b"not an image at all")),
            "references.0.image",
        ),
        (lambda b: b["references"][0].update(image=""), "references.0.image"),
        (
            lambda b: b["references"][0].update(
                image=b64(png_bytes(Image.new("L", (64, 64), 255)))
            ),
            "references.0.image",
        ),
        (
            lambda b: b["references"][0].update(
                image=b64(png_bytes(Image.new("L", (9000, 9000), 255)))
            ),
            "references.0.image",
        ),
        (lambda b: b["references"][0].pop("char"), "references.0.char"),
        (lambda b: b["references"][0].update(char="Ω"), "references.0.char"),
        (lambda b: b.update(text="Ω≠"), "text"),
        (lambda b: b.update(text="字" * 257), "text"),
        (lambda b: b.update(size=4096), "size"),
        (lambda b: b.update(style_id="st_" + "0" * 24), None),
    ],
    ids=[
        "no-references",
        "17-references",
        "not-an-image",
        "empty-image",
        "blank-image",
        "huge-image",
        "missing-char",
        "char-outside-model",
        "only-unsupported-text",
        "text-too-long",
        "size-too-big",
        "both-sources",
    ],
)
def test_bad_input_is_a_problem_and_changes_nothing(served: Settings, change, field) -> None:  # type: ignore[no-untyped-def]
    body = {"references": references(), "text": supported_text(2)}
    change(body)
    with worker_thread(served), live_api(served) as client:
        response = client.post(URL, json=body)
        styles = client.get("/v1/jobs/" + "0" * 24)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert "Traceback" not in response.text
    if field is not None:
        fields = {e["field"] for e in problem.get("errors", [])}
        assert any(f.replace("body.", "").startswith(field) for f in fields), problem
    assert styles.status_code == 404


def test_unknown_style_is_404(served: Settings) -> None:
    with live_api(served) as client:
        response = client.post(URL, json={"style_id": "st_" + "f" * 24, "text": supported_text(1)})
        read = client.get("/v1/styles/st_" + "f" * 24)
    assert response.status_code == 404
    assert read.status_code == 404
    assert response.json()["title"] == "Style not found"


def test_decompression_bomb_is_refused() -> None:
    """A small file that claims a huge canvas is refused before its pixels are decoded."""
    data = png_bytes(Image.new("1", (20000, 20000), 1))
    assert len(data) < 200_000
    with pytest.raises(glyphs.GlyphError, match=r"too large|at most"):
        glyphs.decode(data)


def ssim_aligned(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (gaussian, σ = 1.5) at the best whole-pixel offset within ±1 px: the shared
    normalisation centres the ink box on whole pixels, so two rasterisations of one outline
    whose boxes differ by a pixel land one pixel apart."""
    return max(
        structural_similarity(
            np.roll(a, (dy, dx), (0, 1)),
            b,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


def test_a_font_job_writes_a_font_that_renders_the_same_glyphs(served: Settings) -> None:
    """POST /v1/styles/{id}/font runs on a worker with progress; the .ttf installs in Pillow,
    and the characters it draws match the endpoint's PNG glyphs after the shared
    normalisation: median SSIM >= 0.9 and none below 0.8 (up to a one-pixel offset; the
    normalisation rounds the ink box to whole pixels, which costs thin strokes SSIM)."""
    chars = supported_text(24)
    with worker_thread(served), live_api(served) as client:
        style = client.post(
            "/v1/styles", json={"model": "glyph-style", "references": references()}
        ).json()
        accepted = client.post(
            f"/v1/styles/{style['style_id']}/font", json={"chars": chars, "family": "Hanmo Test"}
        )
        assert accepted.status_code == 202, accepted.text
        href = accepted.headers["Location"]
        deadline = time.monotonic() + 120
        while (job := client.get(href).json())["status"] != "done":
            assert job["status"] in ("queued", "running"), job
            assert time.monotonic() < deadline
            time.sleep(0.3)
        ttf = client.get(href, headers={"Accept": "font/ttf"})
        pngs = client.post(URL, json={"style_id": style["style_id"], "text": chars}).json()
    assert ttf.headers["content-type"] == "font/ttf"
    assert job["result"]["chars"] == len(chars)
    font = ImageFont.truetype(io.BytesIO(ttf.content), 256)
    size = int(read_card(MODEL).signature.size)
    scores = []
    for g in pngs["glyphs"]:
        canvas = Image.new("L", (512, 512), 255)
        ImageDraw.Draw(canvas).text((256, 256), g["char"], font=font, fill=0, anchor="mm")
        drawn = glyphs.normalize(np.asarray(canvas, np.float32) / 255.0, size)
        served_png = glyphs.normalize_bytes(base64.b64decode(g["png"]), size)
        scores.append(ssim_aligned(drawn, served_png))
    assert float(np.median(scores)) >= 0.9, json.dumps([round(s, 3) for s in scores])
    assert min(scores) >= 0.8, json.dumps([round(s, 3) for s in scores])


def test_rows_batched_across_requests_match_a_lone_request(served: Settings) -> None:
    """Generate rows of concurrent requests share batches; each row carries its own style, so a
    request's glyphs do not depend on what else was in the batch."""
    from concurrent.futures import ThreadPoolExecutor

    chars = read_card(MODEL).signature.chars
    texts = [chars[i : i + 3] for i in range(20, 80, 3)]
    with worker_thread(served), live_api(served) as client:
        alone = client.post(URL, json={"references": references(2), "text": texts[0]}).json()
        with ThreadPoolExecutor(8) as pool:
            futures = [
                pool.submit(client.post, URL, json={"references": references(2 + i % 3), "text": t})
                for i, t in enumerate(texts)
            ]
            crowd = [f.result() for f in futures]
    assert all(r.status_code == 200 for r in crowd)

    def pixels(body: dict) -> np.ndarray:  # type: ignore[type-arg]
        return np.stack(
            [np.asarray(Image.open(io.BytesIO(base64.b64decode(g["png"])))) for g in body["glyphs"]]
        )

    first = crowd[0].json()
    assert [g["char"] for g in first["glyphs"]] == [g["char"] for g in alone["glyphs"]]
    assert np.abs(pixels(first).astype(int) - pixels(alone).astype(int)).max() <= 1


def test_openapi_describes_both_body_formats(settings: Settings) -> None:
    import re

    from app.api.main import create_app

    spec = create_app(settings).openapi()
    body = spec["paths"]["/v1/models/{name}/style-transfer"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}
    text = json.dumps(spec)
    refs = set(re.findall(r"#/components/schemas/([A-Za-z0-9_]+)", text))
    assert refs <= set(spec["components"]["schemas"]), refs - set(spec["components"]["schemas"])
    assert "StyleTransferRequest" in refs


def test_with_keys_required_a_saved_style_is_its_keys_own(served: Settings) -> None:
    from tests.api.test_admin import new_key

    settings = served.model_copy(update={"require_api_key": True})
    alice, bob, boss = (new_key(settings, s) for s in ("infer", "infer", "admin"))

    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    with worker_thread(settings), live_api(settings) as client:
        body = {"model": "glyph-style", "references": references(2), "ttl_s": 600}
        assert client.post("/v1/styles", json=body).status_code == 401
        created = client.post("/v1/styles", json=body, headers=auth(alice))
        assert created.status_code == 201, created.text
        href = created.headers["location"]
        use = {"style_id": created.json()["style_id"], "text": supported_text(1)}
        assert client.get(href, headers=auth(bob)).status_code == 404
        assert client.post(URL, json=use, headers=auth(bob)).status_code == 404
        assert client.delete(href, headers=auth(bob)).status_code == 404
        assert client.get(href, headers=auth(boss)).status_code == 200
        assert client.post(URL, json=use, headers=auth(alice)).status_code == 200
        assert client.delete(href, headers=auth(alice)).status_code == 204


def test_references_are_fitted_to_the_frame_the_card_names() -> None:
    """A version trained at another em ratio gets its references in that frame (uploaded, or
    a saved style's recomputed); a card that names none gets the shared one."""
    from app.kinds.style_transfer.request import decode_references, refit
    from app.registry.service import ServedVersion

    card = json.loads((MODEL / "card.json").read_text())
    refs = [((EXAMPLES / f).read_bytes(), c) for c, f in REFS.items()]

    def served(version: int, **signature: object) -> ServedVersion:
        sig = {k: v for k, v in {**card["signature"], **signature}.items() if v is not None}
        return ServedVersion(
            "glyph-style", version, "style_transfer", "onnx", "sha", "", {**card, "signature": sig}
        )

    def sides(out: np.ndarray) -> list[int]:
        return [max(np.ptp(np.nonzero(g)[0]), np.ptp(np.nonzero(g)[1])) + 1 for g in out]

    shipped, other = served(1), served(2, em_ratio=0.6)
    saved, chars = decode_references(refs, shipped)
    assert chars == "".join(REFS)
    assert sides(saved) == [round(card["signature"]["em_ratio"] * 64)] * 4
    assert sides(decode_references(refs, other)[0]) == [round(0.6 * 64)] * 4
    assert (
        sides(decode_references(refs, served(3, em_ratio=None))[0])
        == [round(glyphs.EM_RATIO * 64)] * 4
    )
    shipped_ratio = card["signature"]["em_ratio"]
    assert sides(refit(saved, shipped_ratio, other)) == [round(0.6 * 64)] * 4
    assert np.array_equal(refit(saved, shipped_ratio, shipped), saved)  # same frame: as it is
    # a card whose frame no glyph could fit is refused when the version is checked
    from app.errors import ContractViolation
    from app.kinds.style_transfer.graph import StyleTransferKind

    for bad in (5, 0, "0.8"):
        with pytest.raises(ContractViolation, match="em_ratio"):
            StyleTransferKind().check({**card["signature"], "em_ratio": bad}, {})
