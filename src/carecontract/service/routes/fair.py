"""Fair comparisons over the web: case-mix adjusted ratios and Making Data Count SPC charts.

The public sees both for published periods only, under the disclosure rules of the measures
(``publish.disclosure.public_adjusted`` and ``public_months``: a ratio from the linked public tables'
published counts, a month suppressed with its small counts); a commissioner sees its own patients'
figures and a provider its own, as on the measures route; the auditor sees everything.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from carecontract.measures import standards
from carecontract.measures.casemix import ADJUSTED
from carecontract.measures.compute import MeasureError
from carecontract.measures.definitions import measures as definitions
from carecontract.measures.fair import adjusted as adjusted_rows
from carecontract.measures.fair import monthly_points, spc_chart, spc_rows
from carecontract.measures.series import SERIES
from carecontract.measures.spc import rebase_dates, xmr
from carecontract.publish.disclosure import public_adjusted, public_months
from carecontract.service.access import Principal, allowed, prime_of
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
    terms = ctx.contract(name)
    if measure is not None and measure not in ADJUSTED:
        raise HTTPException(422, f"no case-mix adjustment for that measure (adjusted: {', '.join(ADJUSTED)})")
    public = who.role == "public"
    first, last = ctx.public_period(name, *period) if public else ctx.period(*period)
    keys = ("commissioner", "provider") if who.role == "commissioner" else ("provider",)
    only = [measure] if measure else None
    rows = ctx.on_engine(
        ("adjusted", keys, first, last, measure),
        lambda run: adjusted_rows(run.sources(detail=True), first, last, keys, only),
    )
    if public:
        return public_adjusted(ctx.public_tables(name, (first, last)), rows, keys)
    if who.role in ("commissioner", "provider"):
        rows = [r for r in rows if r.get(who.role) == who.organisation]
    if who.role == "prime":  # its own subcontractors' rows; nothing of a contract it is not the prime of
        subs = subcontractor_codes(who, terms)
        rows = [r for r in rows if r.get("provider") in subs]
    return rows


def subcontractor_codes(who: Principal, terms) -> set[str]:
    """The providers a prime may see in a fair comparison: its contract's subcontractors (none for a
    contract it is not the prime of)."""
    return {s.code for s in terms.contract.subcontractors} if prime_of(who, terms) else set()


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
    # a prime: the contract-wide chart, or one of its subcontractors'
    if who.role == "prime" and (not prime_of(who, terms) or provider not in (None, *subcontractor_codes(who, terms))):
        raise HTTPException(403, "a prime sees its own contract's charts and its subcontractors' only")
    commissioner = who.organisation if who.role == "commissioner" else None
    public = who.role == "public"
    if public and provider is not None:
        raise HTTPException(403, "the public sees the whole contract's chart (a provider's months are small numbers)")
    first, last = ctx.public_period(name, *period) if public else ctx.period(*period)
    target = contract_targets(terms.contract).get(measure, standards.standard(measure, last))
    log = ctx.decisions()
    cuts = rebase_dates(log.records(), measure) if log is not None else []
    if public:
        return _public_spc(ctx, name, measure, (first, last), target, cuts, adjusted)
    try:
        chart = ctx.on_engine(
            ("spc", measure, first, last, target, tuple(cuts), provider, commissioner, adjusted),
            lambda run: spc_chart(
                run.sources(detail=True), measure, first, last, target, cuts, provider, commissioner, adjusted
            ),
        )
    except MeasureError as exc:
        raise HTTPException(404, str(exc)) from None
    return spc_rows(chart, measure, adjusted)


def _public_spc(
    ctx: Context, name: str, measure: str, period: tuple[date, date], target: float | None, cuts: list, adjusted: bool
) -> list[dict[str, Any]]:
    """The public's chart: its months protected with the period's published total
    (``public_months``), the chart drawn from the shown months' published figures only, so its
    mean and limits say nothing of a suppressed month."""
    try:
        points = ctx.on_engine(
            ("spc-months", measure, *period, adjusted),
            lambda run: monthly_points(run.sources(detail=True), measure, *period, adjusted=adjusted),
        )
    except MeasureError as exc:
        raise HTTPException(404, str(exc)) from None
    total = next((r for r in ctx.public_tables(name, period).rows(()) if r["measure"] == measure), None)
    months = public_months(points, total, proportion=definitions()[measure].kind != "mean")
    shown = [m for m in months if m["rate"] is not None]
    higher = definitions()[measure].higher_is_better
    chart = xmr(
        [m["month"] for m in shown], [m["rate"] for m in shown], target, "increase" if higher else "decrease", cuts
    )
    charted = {r["month"]: r for r in spc_rows(chart, measure, adjusted)}
    blank = {k: None for k in ("value", "mean", "lower_process_limit", "upper_process_limit", "point_type")}
    blank |= {"measure": measure, "basis": "adjusted" if adjusted else "raw", "target": target}
    return [
        charted.get(m["month"], blank | {"month": m["month"]})
        | {"numerator": m["numerator"], "denominator": m["denominator"], "suppressed": m["suppressed"]}
        for m in months
    ]
