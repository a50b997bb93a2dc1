"""GET / and /ui/*: the page and its files, with their security headers, outside the schema."""

from __future__ import annotations

import json

from app.api.routes.web import WEB
from app.settings import Settings
from tests.helpers import live_api


def test_page_and_its_files_are_served_with_a_strict_policy(settings: Settings) -> None:
    with live_api(settings) as http:
        page = http.get("/")
        script = http.get("/ui/js/main.js")
        demos = http.get("/ui/demo/styles.json")
        schema = http.get("/openapi.json").json()
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'self'
    assert page.headers["content-security-policy"].startswith("default-src 'self';")
    assert '<script type="module" src="/ui/js/main.js">' in page.text
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.headers["x-content-type-options"] == "nosniff"
    for style in demos.json()["styles"]:
        assert len(style["files"]) == len(style["chars"]) == 4
        assert all((WEB / "demo" / f).is_file() for f in style["files"])
    assert "/" not in schema["paths"]
    assert not any(p.startswith("/ui") for p in schema["paths"])


def test_files_outside_the_web_folder_are_not_served(settings: Settings) -> None:
    with live_api(settings) as http:
        answers = [
            http.get(path)
            for path in ("/ui/../settings.py", "/ui/%2e%2e/settings.py", "/ui/nope.js", "/ui/")
        ]
    for answer in answers:
        assert answer.status_code == 404, answer.request.url
        assert json.loads(answer.text)["status"] == 404
