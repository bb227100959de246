"""Who you are, the contracts served, and their outcome measures."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from carecontract.measures.compute import BREAKDOWNS, MeasureError
from carecontract.publish.disclosure import public_measures
from carecontract.service.access import Principal, allowed
from carecontract.service.context import Context

router = APIRouter()
# the breakdown each role is limited to (its own organisation's rows); the public and auditors have none
OWN_BREAKDOWN = {"commissioner": "commissioner", "provider": "provider"}


@router.get("/api/whoami", tags=["access"])
def whoami(who: Annotated[Principal, Depends(allowed("whoami"))]) -> dict[str, Any]:
    """Your role and organisation, as your token says."""
    return {"role": who.role, "organisation": who.organisation}


@router.get("/api/contracts", tags=["contracts"])
def list_contracts(who: Annotated[Principal, Depends(allowed("contracts"))], ctx: Context) -> list[dict[str, Any]]:
    """The contracts served: parties, term and value."""
    return [
        {
            "id": key,
            "name": t.contract.name,
            "prime": t.contract.prime.code,
            "commissioners": [c.code for c in t.contract.commissioners],
            "subcontractors": [s.code for s in t.contract.subcontractors],
            "start": t.contract.term.start,
            "years": t.contract.term.years,
            "value_gbp": float(t.contract.value.total_gbp),
            "targets": {o.measure: o.target for o in t.contract.outcomes},
        }
        for key, t in ctx.contracts.items()
    ]


@router.get("/api/contracts/{name}/measures", tags=["outcomes"])
def measures(
    who: Annotated[Principal, Depends(allowed("measures"))],
    ctx: Context,
    name: str,
    by: Annotated[list[str] | None, Query()] = None,
    start: date | None = None,
    end: date | None = None,
) -> list[dict[str, Any]]:
    """Outcome measures with 95% intervals: the public's suppressed, the others' limited to their own."""
    ctx.contract(name)
    by = list(dict.fromkeys(by or []))
    if bad := [b for b in by if b not in BREAKDOWNS]:
        raise HTTPException(422, f"unknown breakdown {', '.join(bad)} (valid: {', '.join(BREAKDOWNS)})")
    own = OWN_BREAKDOWN.get(who.role)
    keys = [own, *[b for b in by if b != own]] if own else by
    first, last = ctx.period(start, end)
    try:
        rows = ctx.measures(name, keys, first, last)
    except MeasureError as exc:
        raise HTTPException(422, str(exc)) from None
    if own:
        rows = [r for r in rows if r.get(own) == who.organisation]
    if who.role == "public":
        rows = public_measures(rows, keys)
    return rows
