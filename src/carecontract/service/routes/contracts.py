"""Who you are, the contracts served, and their outcome measures."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from carecontract.measures.compute import BREAKDOWNS, MeasureError
from carecontract.publish.disclosure import MAX_PUBLIC_BREAKDOWNS
from carecontract.service.access import Principal, allowed, prime_of
from carecontract.service.context import Context
from carecontract.service.routes.window import as_at, refuse_public_as_at, window
from carecontract.terms.targets import label_rows

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
    period: Annotated[tuple[date | None, date | None], Depends(window)],
    at: Annotated[str | None, Depends(as_at)],
    by: Annotated[list[str] | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Outcome measures with 95% intervals: the others' limited to their own; the public's for a
    published period only (contract years unless the terms say otherwise), at most two breakdowns,
    every table protected together with the others (docs/transparency.md)."""
    ctx.contract(name)
    asked = by or []
    if len(set(asked)) != len(asked):
        raise HTTPException(422, "each breakdown once: a repeated by= is ambiguous")
    if bad := [b for b in asked if b not in BREAKDOWNS]:
        raise HTTPException(
            422, f"unknown breakdown {', '.join(shorten(b) for b in bad)} (valid: {', '.join(BREAKDOWNS)})"
        )
    if who.role == "public":
        refuse_public_as_at(at)
        if len(asked) > MAX_PUBLIC_BREAKDOWNS:
            raise HTTPException(422, f"the public sees at most {MAX_PUBLIC_BREAKDOWNS} breakdowns at once")
        rows = ctx.public_tables(name, ctx.public_period(name, *period)).rows(asked)
        return label_rows(rows, ctx.contract(name).contract)  # where each target came from, as in the report
    if who.role == "prime":  # the whole contract's outcomes, and its subcontractors' by provider
        return prime_measures(ctx, who, name, asked, ctx.period(*period, at), at)
    own = OWN_BREAKDOWN.get(who.role)
    keys = [own, *[b for b in asked if b != own]] if own else asked
    first, last = ctx.period(*period, at)
    try:
        rows = ctx.measures(name, keys, first, last, at)
    except MeasureError as exc:
        raise HTTPException(422, str(exc)) from None
    if own:
        rows = [r for r in rows if r.get(own) == who.organisation]
    return rows


def prime_measures(
    ctx: Context, who: Principal, name: str, asked: list[str], window: tuple[date, date], at: str | None
) -> list[dict[str, Any]]:
    """What a prime sees: the contract-wide rates its payment depends on (no breakdown asked), and
    by provider only its own subcontractors' rows; nothing for a contract it is not the prime of."""
    terms = ctx.contract(name)
    if not prime_of(who, terms):
        return []
    try:
        rows = ctx.measures(name, asked, *window, at)
    except MeasureError as exc:
        raise HTTPException(422, str(exc)) from None
    if "provider" in asked:
        subs = {s.code for s in terms.contract.subcontractors}
        rows = [r for r in rows if r.get("provider") in subs]
    return rows


def shorten(value: str, most: int = 40) -> str:
    """A value from the request, cut short: an error never echoes a long query back."""
    return value if len(value) <= most else value[:most] + "…"
