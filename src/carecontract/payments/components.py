"""Where each pound went, year by year: the components of the posted payments, as rows that add up.

A finance reader follows every pound from price to payee. For each contract year the rows come in
two sections, each summing to the same total (the ledger balances, so they must):

- **paid by the commissioners**: payments on account, the true-up at reconciliation, their share
  of a gain or loss (money returned on an underspend is negative), money held back or returned in
  a dispute;
- **went to**: the prime's fee or management fee, its share of the gain or loss (negative when it
  bears a loss out of its management account), VAT the prime cannot recover, each subcontractor,
  money held in suspense while a dispute is open, and whatever the prime still holds (received on
  account and not yet passed on before the year is reconciled).

Every row names its accounts in words (from the terms) and carries a note wherever it is negative.
The CLI's ``pay`` table, and the report and dashboard, render these same rows
(:func:`payment_components`), so they cannot disagree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from carecontract.payments import accounts
from carecontract.terms.model import Contract
from carecontract.terms.names import named

PAID = "paid by the commissioners"
WENT = "went to"

_IN = {  # rule of a commissioner posting → component
    "on_account": "payments on account",
    "true_up": "true-up at reconciliation (due less paid on account)",
    "contract_payment": "contract payment (as reconciled)",
    "gain_share": "commissioners' share of an underspend (returned to them)",
    "loss_share": "commissioners' share of an overspend (paid in addition)",
    "dispute_held": "held back in a dispute",
    "dispute_resolved": "returned or awarded in a dispute",
}
_MANAGEMENT = {
    "stage1_fee": "stage 1 fee (the prime keeps)",
    "management_fee": "management fee (the prime keeps)",
    "gain_share": "the prime's share of an underspend",
    "loss_share": "the prime's share of an overspend (borne from its management account)",
}
_NOTES = {
    "gain_share": "negative: money returned to the commissioners from an underspend",
    "true_up": "negative: the commissioners paid more on account than was due, and are repaid",
    "loss_share": "negative: the prime bears its share of an overspend, out of what it kept",
    "held": "negative: the prime has passed on more than it has received so far",
}


def payment_components(rows: Iterable[Mapping[str, Any]], contract: Contract) -> list[dict[str, Any]]:
    """Rows of (``year``, ``section``, ``component``, ``account``, ``pence``, ``note``) from ledger rows.

    Within each year the ``paid by the commissioners`` rows and the ``went to`` rows sum to the same
    total; ``account`` is the ledger account, ``component`` says what the money was in words.
    """
    cells: dict[tuple[int, str, str, str], int] = defaultdict(int)
    for r in rows:
        year, account, rule, pence = int(r["period"]), str(r["account"]), str(r["rule"]), int(r["pence"])
        kind = accounts.kind(account)
        if kind == accounts.COMMISSIONER:
            cells[(year, PAID, _IN.get(rule, rule), "commissioners")] -= pence
        elif kind == accounts.MANAGEMENT:
            cells[(year, WENT, _MANAGEMENT.get(rule, rule), account)] += pence
        elif kind == accounts.SUBCONTRACTOR:
            who = named(accounts.code(account), contract)
            cells[(year, WENT, f"subcontractor {who}", account)] += pence
        elif account == accounts.HMRC_VAT:
            cells[(year, WENT, "VAT the prime cannot recover (to HMRC)", account)] += pence
        elif kind == accounts.SUSPENSE:
            cells[(year, WENT, "held in suspense while a dispute is open", accounts.SUSPENSE)] += pence
        elif kind == accounts.PRIME:
            cells[(year, WENT, "with the prime, not yet passed on", account)] += pence
        else:
            cells[(year, WENT, account, account)] += pence
    out = []
    for (year, section, component, account), pence in sorted(cells.items(), key=_order):
        if not pence and not (section == WENT and component.startswith("subcontractor")):
            continue
        out.append(
            {
                "year": year,
                "section": section,
                "component": component,
                "account": account,
                "pence": pence,
                "note": _note(component, pence),
            }
        )
    return out


def component_order(section: str, component: str) -> tuple[int, int, str]:
    """Where a component comes in its year: money in before money out; fees, VAT, subcontractors, the rest."""
    rank = {PAID: 0, WENT: 1}[section]
    order = list(_IN.values()) if section == PAID else [*_MANAGEMENT.values()]
    if component in order:
        within = order.index(component)
    else:
        within = len(order) + (0 if "VAT" in component else 1 if component.startswith("subcontractor") else 2)
    return (rank, within, component)


def _order(item: tuple[tuple[int, str, str, str], int]) -> tuple[Any, ...]:
    (year, section, component, _account), _ = item
    return (year, *component_order(section, component))


def _note(component: str, pence: int) -> str:
    if pence >= 0:
        return ""
    if "underspend" in component and "returned" in component:
        return _NOTES["gain_share"]
    if component.startswith("true-up"):
        return _NOTES["true_up"]
    if "overspend" in component:
        return _NOTES["loss_share"]
    if component.startswith("with the prime"):
        return _NOTES["held"]
    return "negative: money flowed back the other way"


def totals(components: Iterable[Mapping[str, Any]]) -> dict[int, dict[str, int]]:
    """Each year's total per section (``paid by the commissioners`` and ``went to``): equal in a balanced ledger."""
    out: dict[int, dict[str, int]] = defaultdict(lambda: {PAID: 0, WENT: 0})
    for c in components:
        out[c["year"]][c["section"]] += c["pence"]
    return dict(out)
