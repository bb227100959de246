"""Fair comparisons over the web: case-mix adjusted ratios and Making Data Count SPC charts.

Neither has disclosure control yet (monthly counts and observed/expected by provider are small
numbers), so the public may not call them; a commissioner sees its own patients' figures and a
provider its own, as on the measures route; the auditor sees everything.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from carecontract.measures import standards
from carecontract.measures.casemix import ADJUSTED
from carecontract.measures.compute import MeasureError
from carecontract.measures.fair import adjusted as adjusted_rows
from carecontract.measures.fair import spc_chart, spc_rows
from carecontract.measures.series import SERIES
from carecontract.measures.spc import rebase_dates
from carecontract.service.access import Principal, allowed
from carecontract.service.context import Context
from carecontract.service.routes.window import window
from carecontract.terms.targets import contract_targets

router = APIRouter()


@router.get("/api/contracts/{name}/adjusted", tags=["outcomes"])
def adjusted(
    who: Annotated[Principal, Depends(allowed("adjusted"))],
    ctx: Context,
    name: str,
    period: Annotated[tuple[date | None, date | None], Depends(window)],
    measure: Annotated[str | None, Query(description=f"one of {', '.join(ADJUSTED)} (default: all)")] = None,
) -> list[dict[str, Any]]:
    """Case-mix adjusted O/E ratios by provider (a commissioner: its own patients, by provider),
    with the raw and the adjusted rate side by side and the funnel widened for overdispersion."""
    ctx.contract(name)
    if measure is not None and measure not in ADJUSTED:
        raise HTTPException(422, f"no case-mix adjustment for that measure (adjusted: {', '.join(ADJUSTED)})")
    first, last = ctx.period(*period)
    keys = ("commissioner", "provider") if who.role == "commissioner" else ("provider",)
    rows = adjusted_rows(ctx.run().sources(detail=True), first, last, keys, [measure] if measure else None)
    if who.role in ("commissioner", "provider"):
        rows = [r for r in rows if r.get(who.role) == who.organisation]
    return rows


@router.get("/api/contracts/{name}/spc", tags=["outcomes"])
def spc(
    who: Annotated[Principal, Depends(allowed("spc"))],
    ctx: Context,
    name: str,
    period: Annotated[tuple[date | None, date | None], Depends(window)],
    measure: Annotated[str, Query(description="the measure charted")] = "cwt_62",
    provider: Annotated[str | None, Query(description="one provider's chart (a provider: its own)")] = None,
    adjusted: Annotated[bool, Query(description="chart the case-mix adjusted rate")] = False,
) -> list[dict[str, Any]]:
    """The measure's monthly XmR chart: mean, process limits, special causes, variation and assurance
    against the contract's target; rebased only at decisions recorded in the decision log."""
    terms = ctx.contract(name)
    if measure not in SERIES:
        raise HTTPException(422, f"no monthly series for that measure (valid: {', '.join(SERIES)})")
    if who.role == "provider":
        if provider not in (None, who.organisation):
            raise HTTPException(403, "a provider may not see another provider's chart")
        provider = who.organisation
    commissioner = who.organisation if who.role == "commissioner" else None
    first, last = ctx.period(*period)
    target = contract_targets(terms.contract).get(measure, standards.standard(measure, last))
    log = ctx.decisions()
    cuts = rebase_dates(log.records(), measure) if log is not None else []
    try:
        chart = spc_chart(
            ctx.run().sources(detail=True), measure, first, last, target, cuts, provider, commissioner, adjusted
        )
    except MeasureError as exc:
        raise HTTPException(404, str(exc)) from None
    return spc_rows(chart, measure, adjusted)
