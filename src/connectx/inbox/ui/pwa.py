"""The inbox as an installable web app: the manifest and a service worker that caches only the
static assets (styles, scripts, icons), never pages, API answers or media: personal data stays
off the device's cache (docs/inbox.md)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from connectx import __version__

router = APIRouter()
STATIC = Path(__file__).resolve().parents[2] / "web" / "static"

MANIFEST = {
    "name": "ConnectX Inbox",
    "short_name": "Inbox",
    "description": "Answer your customers on WhatsApp.",
    "id": "/inbox",
    "start_url": "/inbox",
    "scope": "/",
    "display": "standalone",
    "background_color": "#ffffff",
    "theme_color": "#128c5e",
    "icons": [
        {"src": "/static/img/icon-192.png", "sizes": "192x192", "type": "image/png"},
        {"src": "/static/img/icon-512.png", "sizes": "512x512", "type": "image/png"},
        {"src": "/static/img/logo.svg", "sizes": "any", "type": "image/svg+xml"},
    ],
}


@router.get("/manifest.webmanifest", include_in_schema=False)
async def manifest() -> JSONResponse:
    return JSONResponse(
        MANIFEST,
        media_type="application/manifest+json",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/sw.js", include_in_schema=False)
async def service_worker() -> Response:
    # The cache name carries the release, so an upgrade drops the old assets.
    source = (STATIC / "js" / "sw.js").read_text(encoding="utf-8")
    return Response(
        source.replace("__VERSION__", __version__),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )
