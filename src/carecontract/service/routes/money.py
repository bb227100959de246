"""The contract's money: the ledger by year and account, who was paid for whom, and its viability."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from carecontract.payments import accounts
from carecontract.payments.ledger import net_by_account
from carecontract.publish.disclosure import public_accountability
from carecontract.service.access import Principal, allowed
from carecontract.service.context import Context
from carecontract.service.routes.window import as_at, refuse_public_as_at, window

router = APIRouter()


def visible_account(who: Principal, account: str) -> bool:
    """May ``who`` see this ledger account's totals?

    A commissioner sees its own account and everyone it pays through the prime, not its peers; a
    provider sees only its own accounts; the public and auditors see every account.
    """
    if who.role == "commissioner":
        return accounts.kind(account) != accounts.COMMISSIONER or account == accounts.commissioner(who.organisation)
    if who.role == "provider":
        return account in accounts.provider_accounts(who.organisation)
    return True


@router.get("/api/contracts/{name}/payments", tags=["payments"])
def payments(who: Annotated[Principal, Depends(allowed("payments"))], ctx: Context, name: str) -> dict[str, Any]:
    """Money by contract year and account from the closed ledger; the auditor also gets every posting."""
    rows = ctx.ledger(name)
    net = net_by_account(r for r in rows if visible_account(who, r["account"]))
    out: dict[str, Any] = {
        "by_year_and_account": [{"year": y, "account": a, "net_gbp": p / 100} for (y, a), p in net.items()],
        "balanced": sum(r["pence"] for r in rows) == 0,
    }
    if who.role == "auditor":
        out["entries"] = rows
    return out


@router.get("/api/contracts/{name}/accountability", tags=["payments"])
def accountability_table(
    who: Annotated[Principal, Depends(allowed("accountability"))],
    ctx: Context,
    name: str,
    period: Annotated[tuple[date | None, date | None], Depends(window)],
    at: Annotated[str | None, Depends(as_at)],
) -> list[dict[str, Any]]:
    """Each subcontractor's activity, cost, payment and outcomes for each commissioner's patients;
    the public's for a published period, events protected and money following them."""
    prime = ctx.contract(name).contract.prime.code
    if who.role == "public":
        refuse_public_as_at(at)
        return public_accountability(ctx.accountability(name, *ctx.public_period(name, *period)))
    rows = ctx.accountability(name, *ctx.period(*period, at), at)
    if who.role == "commissioner":
        return [r for r in rows if r["commissioner"] == who.organisation]
    if who.role == "provider":
        return [r for r in rows if who.organisation in (r["subcontractor"], prime)]
    return rows


@router.get("/api/contracts/{name}/viability", tags=["viability"])
def viability(who: Annotated[Principal, Depends(allowed("viability"))], ctx: Context, name: str) -> dict[str, Any]:
    """The Monte Carlo stress test of the contract's whole life (no patient data in it)."""
    result = ctx.stress(name)
    return {k: v for k, v in result.items() if not k.startswith("_")}
