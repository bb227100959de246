"""What was recorded: data quality, the decision log, and patient-level rows for their own provider."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from carecontract.publish.decisions import DecisionLogError
from carecontract.publish.disclosure import public_quality
from carecontract.service.access import Principal, allowed
from carecontract.service.context import Context
from carecontract.service.routes.window import as_at, refuse_public_as_at

router = APIRouter()
PATIENT_LEVEL_LIMIT = 1000
Limit = Annotated[int, Query(ge=1, le=PATIENT_LEVEL_LIMIT)]


@router.get("/api/quality", tags=["data"])
def data_quality(
    who: Annotated[Principal, Depends(allowed("quality"))],
    ctx: Context,
    at: Annotated[str | None, Depends(as_at)],
) -> dict[str, Any]:
    """Completeness, validity, timeliness and duplicates (as at ``as_at``); the public's counts
    suppressed, and the latest only."""
    if who.role == "public":
        refuse_public_as_at(at)
        return public_quality(ctx.quality())
    return ctx.quality(at)


@router.get("/api/decisions", tags=["accountability"])
def decisions(who: Annotated[Principal, Depends(allowed("decisions"))], ctx: Context) -> dict[str, Any]:
    """The decision log and whether it verifies (auditors only)."""
    log = ctx.decisions()
    if log is None:
        return {"records": [], "problems": [], "verified": True}
    problems = [str(p) for p in log.verify()]
    try:
        records = log.records()
    except DecisionLogError as exc:  # a line that is not a record: the problems say which
        records, problems = [], [*problems, str(exc)]
    return {"records": records, "problems": problems, "verified": not problems}


def _patient_rows(ctx: Context, view: str, who: Principal, provider: str | None, limit: int) -> dict[str, Any]:
    if provider is not None and provider != who.organisation:
        shown = provider if len(provider) <= 40 else provider[:40] + "…"
        raise HTTPException(403, f"provider {who.organisation} may not see {shown}'s patient-level rows")
    return {"provider": who.organisation, "rows": ctx.patient_rows(view, who.organisation, limit), "limit": limit}


@router.get("/api/events", tags=["patient-level"])
def events(
    who: Annotated[Principal, Depends(allowed("events"))], ctx: Context, provider: str | None = None, limit: Limit = 100
) -> dict[str, Any]:
    """Pseudonymised event rows the calling provider recorded (providers only, their own)."""
    return _patient_rows(ctx, "events", who, provider, limit)


@router.get("/api/quarantine", tags=["patient-level"])
def quarantined(
    who: Annotated[Principal, Depends(allowed("quarantine"))],
    ctx: Context,
    provider: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """The calling provider's quarantined rows with their reasons, to correct and resubmit."""
    return _patient_rows(ctx, "quarantine", who, provider, limit)
