"""The contract's money: the ledger by year and account, who was paid for whom, and its viability."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from carecontract.payments import accounts
from carecontract.payments.book import PaymentBook
from carecontract.payments.components import account_name, component_table, payment_components
from carecontract.payments.disputes import disputes_of
from carecontract.payments.ledger import net_by_account
from carecontract.publish.disclosure import public_accountability
from carecontract.publish.money import money_by_kind
from carecontract.service.access import Principal, allowed, prime_of
from carecontract.service.context import Context
from carecontract.service.routes.window import as_at, refuse_public_as_at, window

router = APIRouter()


def visible_account(who: Principal, account: str) -> bool:
    """May ``who`` see this ledger account's totals?

    A commissioner sees its own account and everyone it pays through the prime, not its peers; a
    provider sees only its own accounts; the public, auditors and the contract's prime (which pays
    everyone under it; routes check it is this contract's prime) see every account.
    """
    if who.role == "commissioner":
        return accounts.kind(account) != accounts.COMMISSIONER or account == accounts.commissioner(who.organisation)
    if who.role == "provider":
        return account in accounts.provider_accounts(who.organisation)
    return True


@router.get("/api/contracts/{name}/payments", tags=["payments"])
def payments(who: Annotated[Principal, Depends(allowed("payments"))], ctx: Context, name: str) -> dict[str, Any]:
    """Money by contract year and account as paid (the journal, else the closed statements: each row's
    ``source``); the components where it went; the auditor also gets every posting."""
    terms = ctx.contract(name)
    rows = ctx.ledger(name)
    if who.role == "prime" and not prime_of(who, terms):
        who = Principal("provider", who.organisation)  # a prime of another contract: only its own accounts here
    net = net_by_account(r for r in rows if visible_account(who, r["account"]))
    contract = terms.contract
    out: dict[str, Any] = {
        "by_year_and_account": [
            {"year": y, "account": a, "name": account_name(a, contract), "net_gbp": p / 100}
            for (y, a), p in net.items()
        ],
        "balanced": sum(r["pence"] for r in rows) == 0,
    }
    if who.role in ("public", "auditor", "prime"):  # the whole year's components: every account is visible to them
        out |= _components(rows, contract)
    if who.role != "provider":  # notices of calculation error are between the commissioners and the prime
        out["disputes"] = disputes_of(ctx.run().with_terms(terms), terms)
    if who.role == "auditor":
        out["entries"] = rows
    return out


def _components(rows: list[dict[str, Any]], contract: Any) -> dict[str, Any]:
    """Where the money went (payments.components, the one home of it): the rows, in pounds, with
    their group and note, and the same rows as the table every surface shows (``component_table``:
    one line per component, a column per year, each section's total, the price, numbered notes).
    Pence in the library, pounds on the wire, as every route."""
    components = payment_components(rows, contract)
    t = component_table(components, contract)

    def gbp(cells: dict[int, int | None]) -> dict[str, float | None]:
        return {str(y): None if p is None else p / 100 for y, p in cells.items()}

    return {
        "components": [{k: v for k, v in c.items() if k != "pence"} | {"gbp": c["pence"] / 100} for c in components],
        "component_table": {
            "years": t["years"],
            "lines": [{k: v for k, v in x.items() if k != "pence"} | {"gbp": gbp(x["pence"])} for x in t["lines"]],
            "totals": {str(y): {s: p / 100 for s, p in v.items()} for y, v in t["totals"].items()},
            "balanced": {str(y): b for y, b in t["balanced"].items()},
            "price": gbp(t["price"]),
            "notes": t["notes"],
        },
        "source": sorted({r.get("source", "statement") for r in rows}),
    }


@router.get("/api/contracts/{name}/money-by-kind", tags=["payments"])
def money_by_kind_table(
    who: Annotated[Principal, Depends(allowed("money-by-kind"))], ctx: Context, name: str
) -> list[dict[str, Any]]:
    """What each kind of organisation (NHS trust, independent sector, voluntary sector and hospices, the
    prime consortium, HMRC) received each year, management fees, gain/loss shares and VAT included, with
    its share of the year's contract value. Money between organisations only: the same for every role."""
    del who
    return [
        {k: v for k, v in r.items() if k != "pence"}
        for r in money_by_kind(ctx.ledger(name), ctx.contract(name).contract)
    ]


@router.get("/api/contracts/{name}/prime", tags=["payments"])
def prime_view(who: Annotated[Principal, Depends(allowed("prime"))], ctx: Context, name: str) -> dict[str, Any]:
    """For the prime contractor (and auditors): each closed year's outcomes its payment depended on —
    rate, target, threshold, weight and achievement — the at-risk pot released, and each
    subcontractor's recorded cost and payment, with the payment components."""
    terms = ctx.contract(name)
    if who.role == "prime" and not prime_of(who, terms):
        raise HTTPException(403, f"the prime role of {who.organisation} may not see {name}: it is not its prime")
    contract = terms.contract
    book = PaymentBook(ctx.run().with_terms(terms), terms)
    closed = {v["period"]: v for v in book.manifest()["versions"]}  # the latest version of each year
    paid: dict[tuple[int, str], int] = {}  # what each account was actually paid (journal, else statement)
    for r in ctx.ledger(name):
        paid[(r["period"], r["account"])] = paid.get((r["period"], r["account"]), 0) + r["pence"]
    outcomes = {o.measure: o for o in contract.outcomes}
    years = []
    for year, version in sorted(closed.items()):
        result = version["result"]
        rates = result.get("rates") or {}
        years.append(
            {
                "year": year,
                "stage": result["stage"],
                "kind": result["kind"],
                "as_at": version.get("as_at"),
                "store_version": version.get("store_version"),
                "achievement": result.get("achievement"),
                "at_risk_gbp": result.get("at_risk_pence", 0) / 100,
                "released_gbp": result.get("released_pence", 0) / 100,
                "outcomes": [
                    {
                        "measure": m,
                        "rate": rates.get(m),
                        "target": o.target,
                        "threshold": o.threshold,
                        "weight": o.weight,
                        "clause": o.clause,
                    }
                    for m, o in outcomes.items()
                ],
                "gate": result.get("gate"),
                "subcontractors": [
                    {
                        "code": s.code,
                        "name": s.name,
                        "kind": s.kind,
                        "due_gbp": (result.get("to_subcontractors_pence") or {}).get(s.code, 0) / 100,
                        "paid_gbp": paid.get((year, accounts.subcontractor(s.code)), 0) / 100,
                    }
                    for s in contract.subcontractors
                ],
                "recorded_cost_gbp": None
                if result.get("recorded_cost_pence") is None
                else result["recorded_cost_pence"] / 100,
            }
        )
    return {
        "prime": {"code": contract.prime.code, "name": contract.prime.name, "kind": contract.prime.kind},
        "years": years,
        **_components(ctx.ledger(name), contract),
        "explain": "carecontract explain-payment TERMS --store S --year Y traces each amount to its clause",
    }


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
    if who.role == "prime" and who.organisation != prime:
        return []  # the prime of another contract
    return rows


@router.get("/api/contracts/{name}/viability", tags=["viability"])
def viability(who: Annotated[Principal, Depends(allowed("viability"))], ctx: Context, name: str) -> dict[str, Any]:
    """The Monte Carlo stress test of the contract's whole life (no patient data in it)."""
    result = ctx.stress(name)
    return {k: v for k, v in result.items() if not k.startswith("_")}
