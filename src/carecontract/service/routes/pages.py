"""The dashboard page, its script, its icon and the Plotly library it loads, all served by the service (no CDN)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from plotly.offline import get_plotlyjs

router = APIRouter(include_in_schema=False)
# a small square with a rising line, so browsers find an icon rather than logging a 404 on every load
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
    'fill="#1f77b4"/><path d="M3 12 L7 8 L9 10 L13 4" stroke="#fff" stroke-width="2" fill="none"/></svg>'
)


def _asset(name: str) -> str:
    return resources.files("carecontract.service").joinpath(name).read_text()


@router.get("/", response_class=HTMLResponse)
def dashboard() -> str:
    return _asset("dashboard.html")


@router.get("/static/dashboard.js")
def dashboard_js() -> Response:
    return Response(_asset("dashboard.js"), media_type="application/javascript")


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(FAVICON, media_type="image/svg+xml")


@router.get("/static/plotly.js")
def plotly_js() -> Response:
    headers = {"Cache-Control": "public, max-age=86400"}
    return Response(get_plotlyjs(), media_type="application/javascript", headers=headers)
