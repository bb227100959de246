"""The chain of responsibility the prime model hides: each subcontractor, seen by each commissioner.

UNISON feared "one big game of pass-the-blame" once commissioners contracted only with a prime.
For every commissioner this lists each subcontractor's activity and cost for that
commissioner's patients, the payments it received for them (its payments from the prime, in
proportion to the cost of each commissioner's patients), and its outcomes for those patients.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from carecontract.baseline.compute import activity_rows
from carecontract.payments import accounts
from carecontract.payments.book import PaymentBook
from carecontract.payments.ledger import net_by_account
from carecontract.run import Run, StoreLike
from carecontract.terms.loader import Terms
from carecontract.terms.targets import contract_targets

OUTCOME_FIELDS = ("rate", "numerator", "denominator", "target", "met")


def _received(book: PaymentBook, years: list[int], codes: list[str]) -> dict[str, int]:
    """What each subcontractor was paid (pence) in the closed periods ``years``."""
    net = net_by_account(book.paid_rows(years), by_period=False)
    return {code: net.get(accounts.subcontractor(code), 0) for code in codes}


def _cost_by_pair(in_scope: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """Cost (pounds) by (commissioner, provider)."""
    cost: dict[tuple[str, str], float] = {}
    for a in in_scope:
        cost[a["commissioner"], a["provider"]] = cost.get((a["commissioner"], a["provider"]), 0.0) + a["cost_gbp"]
    return cost


def _outcomes(outcome_rows: list[dict[str, Any]], commissioner: str, provider: str) -> dict[str, dict[str, Any]]:
    """A subcontractor's outcomes for one commissioner's patients, by measure."""
    return {
        r["measure"]: {k: r[k] for k in OUTCOME_FIELDS}
        for r in outcome_rows
        if r.get("commissioner") == commissioner and r.get("provider") == provider
    }


def accountability(
    store: Run | StoreLike,
    terms: Terms | None,
    start: date,
    end: date,
    activity: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One row per commissioner × subcontractor over [start, end].

    ``store`` is a Run or a store path; ``terms`` may be None for a Run built with terms.
    ``activity`` (baseline activity rows for these terms) saves recomputing it if the caller has it.
    """
    run = Run.of(store, terms)
    terms = terms if terms is not None else run.terms
    if terms is None:
        raise ValueError("accountability needs terms: pass them, or a Run built with them")
    contract = terms.contract
    subs = {s.code: s.name for s in contract.subcontractors}
    all_activity = activity if activity is not None else activity_rows(run.events, terms)
    years = {d.year for d in contract.contract_years() if start <= d <= end} or {contract.term.start.year}
    received = _received(PaymentBook(run, terms), sorted(years), list(subs))
    measures = [o.measure for o in contract.outcomes]
    targets = contract_targets(contract)  # the one rule of terms.targets, as every other output
    outcome_rows = run.measures(start, end, by=("commissioner", "provider"), targets=targets, only=measures or None)
    in_scope = [a for a in all_activity if a["year"] in years and a["provider"] in subs]
    cost = _cost_by_pair(in_scope)
    out = []
    for commissioner in contract.commissioners:
        for code, name in subs.items():
            mine = [a for a in in_scope if a["commissioner"] == commissioner.code and a["provider"] == code]
            total_cost = sum(v for (_, p), v in cost.items() if p == code)
            # a subcontractor's payments, attributed to commissioners by the cost of their patients
            weight = cost.get((commissioner.code, code), 0.0) / total_cost if total_cost else commissioner.share
            out.append(
                {
                    "commissioner": commissioner.code,
                    "commissioner_name": commissioner.name,
                    "subcontractor": code,
                    "subcontractor_name": name,
                    "events": sum(a["events"] for a in mine),
                    "cost_gbp": round(sum(a["cost_gbp"] for a in mine), 2),
                    "payment_received_gbp": round(received[code] * weight / 100, 2),
                    "outcomes": _outcomes(outcome_rows, commissioner.code, code),
                }
            )
    return out
