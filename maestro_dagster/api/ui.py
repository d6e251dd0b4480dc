"""The web UI under ``/ui``: the built assets shipped in the package (``ui_dist/``, built from ``ui/`` by
``make ui``), served with a strict Content-Security-Policy.

Every path under ``/ui`` that is not a file of the build answers the UI's ``index.html`` (the page routes itself).
A file is served only from inside ``ui_dist`` (a path that resolves outside it is the index, never the file). The
page holds no secret: it asks for a bearer token, keeps it in the browser tab's ``sessionStorage`` and sends it as
an ``Authorization`` header to the API, which checks every call's role as it always does.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

router = APIRouter(tags=["ui"], include_in_schema=False)
UI_DIST = Path(__file__).resolve().parent / "ui_dist"
# No inline script, no eval, nothing from another origin; the API and its WebSocket are same-origin. Style
# elements only with the page's nonce: the editor (CodeMirror) adds its own with it (``<meta name="csp-nonce">``).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; "
    "font-src 'self'; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _file(path: str) -> Path | None:
    """The build's file at ``path`` (relative to ``/ui/``), or None if there is none inside ``ui_dist``."""
    root = UI_DIST.resolve()
    candidate = (root / path).resolve()
    if candidate == root or not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _headers(nonce: str) -> dict[str, str]:
    return {**HEADERS, "Content-Security-Policy": CSP.format(nonce=nonce)}


def _page(index: Path) -> Response:
    """``index.html`` with a fresh nonce for this answer, named in its policy and in a meta tag for the editor."""
    nonce = secrets.token_urlsafe(18)
    html = index.read_text(encoding="utf-8").replace(
        "<head>", f'<head>\n    <meta name="csp-nonce" content="{nonce}" />', 1
    )
    return HTMLResponse(html, headers={**_headers(nonce), "Cache-Control": "no-store"})


@router.get("/ui")
@router.get("/ui/{path:path}")
def ui(path: str = "") -> Response:
    index = UI_DIST / "index.html"
    if not index.is_file():
        return JSONResponse(
            {"error": "ui_not_built", "message": "The web UI is not built in this installation: run `make ui`."},
            status_code=404,
            headers=_headers(secrets.token_urlsafe(18)),
        )
    found = _file(path) if path else None
    if found is None or found.name == "index.html":
        return _page(index)
    immutable = found.parent.name == "assets"  # Vite's hashed file names: a new build has new names
    cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
    return FileResponse(found, headers={**_headers(secrets.token_urlsafe(18)), "Cache-Control": cache})
