"""The service's routes, one module per area, each a module-level function on that module's ``APIRouter``.

Every ``/api`` route takes its caller from ``Depends(allowed(name))`` (the role table is
:data:`carecontract.service.access.ACCESS`) and what it reads from the ``Context`` dependency.
:func:`add_routes` puts them on the app in the order of ``ROUTERS``, which is the order of /docs.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from carecontract.service.routes import contracts, fair, money, pages, records

ROUTERS = (contracts.router, fair.router, money.router, records.router, pages.router)


def add_routes(app: FastAPI) -> None:
    """Add every route to ``app`` itself, as its own route.

    Not ``app.include_router``: since FastAPI 0.165 that keeps each router as one nested entry of
    ``app.routes``, and the role-matrix test (like anyone listing the app's routes) reads every /api
    path from ``app.routes``. Each route is re-made with the app's settings (dependency overrides
    included) from the options the routers declare; summaries, descriptions and response models
    come from the functions themselves, as before.
    """
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute), route
            app.add_api_route(
                route.path,
                route.endpoint,
                methods=sorted(route.methods),
                tags=route.tags,
                status_code=route.status_code,
                responses=route.responses,
                dependencies=route.dependencies,
                deprecated=route.deprecated,
                response_class=route.response_class,
                include_in_schema=route.include_in_schema,
                name=route.name,
            )


__all__ = ["ROUTERS", "add_routes"]
