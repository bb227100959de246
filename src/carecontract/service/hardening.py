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

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import MutableHeaders, QueryParams
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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

    app.add_middleware(_Guard, outer=app, known=known, logger=logger)

    @app.exception_handler(RequestValidationError)
    async def short_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(_short(str(part)) for part in error.get("loc", ()))
            problems.append(f"{where}: {_short(str(error.get('msg', 'invalid')), 120)}")
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)


def _route(app: FastAPI, scope: Scope) -> str | None:
    """The path template the request matches (``/api/contracts/{name}/measures``), or None."""
    for route in app.routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return getattr(route, "path", None)
    return None


class _Guard:
    """The headers, the query check and the access log, as plain ASGI middleware.

    Not ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` runs the route in a task and
    streams its body back through a memory channel, which cost more than the cached routes themselves
    (3-7 ms a request here, more than half of a cached answer); this wraps ``send`` and adds nothing else.
    """

    def __init__(self, app: ASGIApp, outer: FastAPI, known: dict[str, set[str]], logger: logging.Logger) -> None:
        self.app, self.outer, self.known, self.logger = app, outer, known, logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        route = _route(self.outer, scope)
        checked = route in self.known and path.startswith("/api/")
        params = QueryParams(scope.get("query_string", b""))
        unknown = sorted(set(params) - self.known[route]) if checked else []
        status = 500

        async def send_hardened(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                if path not in CACHEABLE:
                    headers["Cache-Control"] = NO_STORE
                headers.update(SECURITY_HEADERS)
                if path in DASHBOARD_PATHS:
                    headers["Content-Security-Policy"] = DASHBOARD_CSP
            await send(message)

        if unknown:
            names = ", ".join(_short(n) for n in unknown[:5])
            valid = ", ".join(sorted(self.known[route])) or "none"
            refusal = JSONResponse({"detail": f"unknown query parameter {names} (valid here: {valid})"}, 422)
            await refusal(scope, receive, send_hardened)
        else:
            await self.app(scope, receive, send_hardened)
        who = scope.get("state", {}).get("principal")
        refused = who is None and status == 401  # a forged token or another scheme: logged too
        if refused or (who is not None and who.role != "public"):
            entry = {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "role": "refused" if refused else who.role,
                "organisation": None if refused else who.organisation,
                "method": scope["method"],
                "route": route or "(no route)",
                "status": status,
                "ms": round(1000 * (time.perf_counter() - started), 1),
            }
            self.logger.info(json.dumps(entry))


def _short(value: str, most: int = MOST_ECHOED) -> str:
    return value if len(value) <= most else value[:most] + "…"
