"""The dashboard page and the Plotly library it loads, both served by the service (no CDN)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from plotly.offline import get_plotlyjs

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def dashboard() -> str:
    return resources.files("carecontract.service").joinpath("dashboard.html").read_text()


@router.get("/static/plotly.js")
def plotly_js() -> Response:
    headers = {"Cache-Control": "public, max-age=86400"}
    return Response(get_plotlyjs(), media_type="application/javascript", headers=headers)
