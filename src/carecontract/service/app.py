"""The web service: the same figures as the CLI and report, each caller seeing what their role allows.

``create_app(store, terms)`` builds a FastAPI app (OpenAPI at /docs); ``carecontract serve`` runs it
with uvicorn. The app is only wiring: the routes are module-level functions in
:mod:`carecontract.service.routes`, which roles may call each is the :data:`ACCESS` table in
:mod:`carecontract.service.access`, and what they read (store, contracts, cached figures) is the
:class:`~carecontract.service.context.ServiceContext` put on ``app.state`` here.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from carecontract.records.store import Store
from carecontract.service.access import Tokens
from carecontract.service.context import ServiceContext, _setting
from carecontract.service.hardening import harden
from carecontract.service.responses import DEFAULT_MAX_BYTES, DEFAULT_SLOW_SECONDS, Answers
from carecontract.service.routes import add_routes
from carecontract.terms.loader import Terms

DESCRIPTION = (
    "Outcomes, payments and viability of prime-provider care contracts. Send an API token as "
    "`Authorization: Bearer …`; without one you see the public, disclosure-controlled figures."
)


def create_app(
    store: str | Path,
    terms: list[Terms],
    tokens: Tokens,
    decision_log: str | Path | None = None,
    stress_runs: int = 5000,
    access_log: str | Path | None = None,
    cache_size: int | None = None,
    snapshots: int | None = None,
    answer_bytes: int | None = None,
    slow_seconds: float | None = None,
) -> FastAPI:
    """The service for ``terms`` over ``store``, answering each token's principal (no token: the public).

    ``access_log``: a file to append one JSON line to per authenticated request (who, role, route,
    status, time); the ``carecontract.access`` logger gets them either way. ``cache_size`` and
    ``snapshots`` bound what the service keeps in memory (results; store snapshots with their measure
    cubes); unset, ``CARECONTRACT_SERVICE_CACHE_SIZE`` / ``CARECONTRACT_SERVICE_SNAPSHOTS`` or the
    defaults (256, 4) apply; ``answer_bytes`` bounds the encoded answers kept
    (``CARECONTRACT_SERVICE_ANSWER_BYTES``, default 64 MiB); an answer that took ``slow_seconds`` or
    more (``CARECONTRACT_SERVICE_SLOW_SECONDS``, default 1) is given from the last store version while
    a new version's is made (docs/service.md)."""
    # FastAPI's /docs loads Swagger UI from a CDN; FastAPIOffline serves it from the package, so the
    # docs work on a closed NHS network too
    app = FastAPIOffline(title="carecontract", version="1", description=DESCRIPTION)
    app.state.tokens = tokens
    app.state.context = ServiceContext(
        Store(store), terms, decision_log, stress_runs, cache_size=cache_size, snapshots=snapshots
    )
    add_routes(app)
    # inside the hardening layer, so kept answers get its headers and access log too
    if slow_seconds is None:
        slow_seconds = _setting("CARECONTRACT_SERVICE_SLOW_SECONDS", DEFAULT_SLOW_SECONDS)
    app.add_middleware(
        Answers,
        outer=app,
        max_bytes=answer_bytes or _setting("CARECONTRACT_SERVICE_ANSWER_BYTES", DEFAULT_MAX_BYTES),
        slow=slow_seconds,
    )
    harden(app, None if access_log is None else Path(access_log))
    return app
