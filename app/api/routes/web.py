"""The web page: GET / serves app/web/index.html, /ui/* its scripts, styles and demo glyphs.

The page is plain HTML, CSS and ES modules (no build step, no CDN) and talks to the public
HTTP API like any other client. Its own responses carry a strict Content-Security-Policy:
scripts and styles from this origin only, images also from data: and blob: URLs (the API's
PNGs are shown as data URLs), requests to this origin only."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB = Path(__file__).resolve().parents[2] / "web"
# Swagger UI and ReDoc's scripts, installed from a package (fastapi-offline carries both), so
# /docs and /redoc render with no network (FastAPI's defaults load them from a CDN).
DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> Response:
    """The page; always revalidated, so a new release is picked up on reload."""
    return FileResponse(WEB / "index.html", headers={**HEADERS, "Cache-Control": "no-cache"})


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="hanmo - Swagger UI",
        swagger_js_url="/docs-assets/swagger-ui-bundle.js",
        swagger_css_url="/docs-assets/swagger-ui.css",
        swagger_favicon_url="/docs-assets/favicon.png",
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="hanmo - ReDoc",
        redoc_js_url="/docs-assets/redoc.standalone.js",
        redoc_favicon_url="/docs-assets/favicon.png",
        with_google_fonts=False,
    )


def docs_assets() -> StaticFiles:
    return StaticFiles(directory=DOCS_ASSETS)


class WebFiles(StaticFiles):
    """app/web's files with the page's security headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        return response


def files() -> WebFiles:
    return WebFiles(directory=WEB)
