"""The pages: ``GET /`` (the app), ``/docs`` (the API, offline), ``/static/{name}``, the favicon.

None of them is in the OpenAPI schema; :mod:`mlmtool.server.page` writes their HTML.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..state import ServerState, server_state

router = APIRouter(include_in_schema=False)

#: The page's Content-Security-Policy: its own scripts only, requests to itself only.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src data: blob:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
#: The docs page has no script at all.
DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"


@router.get("/")
def index(state: ServerState = Depends(server_state)) -> HTMLResponse:
    """The app page (built once at start), under :data:`PAGE_CSP`."""
    return HTMLResponse(state.page, headers={"Content-Security-Policy": PAGE_CSP})


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    """The API's documentation, written from the app's own OpenAPI schema (no script)."""
    from ..page import docs_html

    return HTMLResponse(docs_html(request.app.openapi()), headers={"Content-Security-Policy": DOCS_CSP})


@router.get("/static/{name}")
def static(name: str) -> Response:
    """One of the page's scripts (:data:`mlmtool.server.page.STATIC`); any other name is 404."""
    from ..page import static_asset

    asset = static_asset(name)  # a fixed set of package files; anything else is 404
    if asset is None:
        raise StarletteHTTPException(404)
    text, media = asset
    return Response(text, media_type=media, headers={"Cache-Control": "no-cache"})


@router.get("/favicon.ico")
def favicon() -> Response:
    """No icon: 204, so browsers stop asking (and nothing is logged as 404)."""
    return Response(status_code=204)
