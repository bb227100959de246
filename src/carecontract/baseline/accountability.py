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
from carecontract.measures.compute import compute_measures, events_table
from carecontract.payments.book import PaymentBook
from carecontract.records.store import Store
from carecontract.terms.loader import Terms


def accountability(
    store: str | Store, terms: Terms, start: date, end: date, activity: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """``activity`` (baseline activity rows for these terms) saves recomputing it if the caller has it."""
    store = store if isinstance(store, Store) else Store(store)
    contract = terms.contract
    subs = {s.code: s.name for s in contract.subcontractors}
    all_activity = activity if activity is not None else activity_rows(events_table(store), terms)
    years = {d.year for d in contract.contract_years() if start <= d <= end} or {contract.term.start.year}
    received: dict[str, int] = dict.fromkeys(subs, 0)
    for row in PaymentBook(store, terms).ledger_rows(sorted(years)):
        code = row["account"].removeprefix("subcontractor:")
        if row["account"].startswith("subcontractor:") and code in received:
            received[code] += row["pence"]
    measures = [o.measure for o in contract.outcomes]
    outcome_rows = compute_measures(store, start, end, by=["commissioner", "provider"], only=measures or None)
    in_scope = [a for a in all_activity if a["year"] in years and a["provider"] in subs]
    cost: dict[tuple[str, str], float] = {}
    for a in in_scope:
        cost[a["commissioner"], a["provider"]] = cost.get((a["commissioner"], a["provider"]), 0.0) + a["cost_gbp"]
    out = []
    for commissioner in contract.commissioners:
        for code, name in subs.items():
            mine = [a for a in in_scope if a["commissioner"] == commissioner.code and a["provider"] == code]
            total_cost = sum(v for (_, p), v in cost.items() if p == code)
            # a subcontractor's payments, attributed to commissioners by the cost of their patients
            weight = cost.get((commissioner.code, code), 0.0) / total_cost if total_cost else commissioner.share
            outcomes = {
                r["measure"]: {k: r[k] for k in ("rate", "numerator", "denominator", "target", "met")}
                for r in outcome_rows
                if r.get("commissioner") == commissioner.code and r.get("provider") == code
            }
            out.append({
                "commissioner": commissioner.code,
                "commissioner_name": commissioner.name,
                "subcontractor": code,
                "subcontractor_name": name,
                "events": sum(a["events"] for a in mine),
                "cost_gbp": round(sum(a["cost_gbp"] for a in mine), 2),
                "payment_received_gbp": round(received[code] * weight / 100, 2),
                "outcomes": outcomes,
            })  # fmt: skip
    return out
