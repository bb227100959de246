"""What every response of a service that serves patient data needs, whatever the route.

- **No caching**: every response but the static Plotly library says ``Cache-Control: no-store``, so
  a figure seen with a token never sits in a shared proxy or the browser's cache.
- **Security headers** everywhere (no MIME sniffing, no framing, no referrer), and on the dashboard
  a content security policy: scripts only from the service itself, no inline script, connections only
  back to it.
- **Unknown query parameters are refused** (422) rather than ignored: ``?start=`` where ``from=`` is
  meant would otherwise silently answer another question.
- **Short errors**: a 422 names each bad parameter and why, never echoing a long value back.
- **An access log** of every authenticated request, and every refused token: who (role and
  organisation, never the token),
  the route's template (not the filled-in path or query), status and time — no patient data, so an
  auditor can see who looked at what.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.responses import Response

NO_STORE = "no-store"
CACHEABLE = ("/static/plotly.js",)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# Plotly sets inline style attributes on what it draws, hence 'unsafe-inline' for styles only
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
DASHBOARD_PATHS = ("/", "/static/dashboard.js")
MOST_ECHOED = 40  # characters of a bad value an error may repeat
access_logger = logging.getLogger("carecontract.access")


def _query_names(route: APIRoute) -> set[str]:
    """Every query parameter a route reads, its dependencies' included."""
    names: set[str] = set()
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        names |= {q.alias for q in dependant.query_params}
        stack += dependant.dependencies
    return names


def harden(app: FastAPI, access_log: Path | None = None) -> None:
    """Add the headers, the query check, the error handler and the access log to ``app``."""
    known = {route.path: _query_names(route) for route in app.routes if isinstance(route, APIRoute)}
    # this app's own child of carecontract.access: its file gets this app's requests only
    logger = access_logger.getChild(f"app{id(app):x}")
    logger.setLevel(logging.INFO)
    if access_log is not None:
        handler = logging.FileHandler(access_log)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        route = _route(app, request)
        checked = route in known and request.url.path.startswith("/api/")
        unknown = sorted(set(request.query_params) - known[route]) if checked else []
        if unknown:
            names = ", ".join(_short(n) for n in unknown[:5])
            valid = ", ".join(sorted(known[route])) or "none"
            response: Response = JSONResponse(
                {"detail": f"unknown query parameter {names} (valid here: {valid})"}, status_code=422
            )
        else:
            response = await call_next(request)
        if request.url.path not in CACHEABLE:
            response.headers["Cache-Control"] = NO_STORE
        response.headers.update(SECURITY_HEADERS)
        if request.url.path in DASHBOARD_PATHS:
            response.headers["Content-Security-Policy"] = DASHBOARD_CSP
        who = getattr(request.state, "principal", None)
        refused = who is None and response.status_code == 401  # a forged token or another scheme: logged too
        if refused or (who is not None and who.role != "public"):
            entry = {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "role": "refused" if refused else who.role,
                "organisation": None if refused else who.organisation,
                "method": request.method,
                "route": route or "(no route)",
                "status": response.status_code,
                "ms": round(1000 * (time.perf_counter() - started), 1),
            }
            logger.info(json.dumps(entry))
        return response

    @app.exception_handler(RequestValidationError)
    async def short_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(_short(str(part)) for part in error.get("loc", ()))
            problems.append(f"{where}: {_short(str(error.get('msg', 'invalid')), 120)}")
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)


def _route(app: FastAPI, request: Request) -> str | None:
    """The path template the request matches (``/api/contracts/{name}/measures``), or None."""
    from starlette.routing import Match

    for route in app.routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return getattr(route, "path", None)
    return None


def _short(value: str, most: int = MOST_ECHOED) -> str:
    return value if len(value) <= most else value[:most] + "…"
