"""Where each pound went, year by year: the one home of the payment components, as rows that add up.

A finance reader follows every pound from price to payee. For each contract year the rows come in
two sections, each summing to the same total (the ledger balances, so they must):

- **paid by the commissioners**: payments on account, the true-up at reconciliation (or, in a book
  closed without the calendar, the contract payment as reconciled), their share of a gain or loss
  (money returned on an underspend is negative), money held back or returned in a dispute;
- **went to**: the prime's fee or management fee, its share of the gain or loss (negative when it
  bears a loss out of its management account), VAT the prime cannot recover, each subcontractor,
  money held in suspense while a dispute is open, and whatever the prime still holds (received on
  account and not yet passed on before the year is reconciled).

Every row names its account in words (:func:`account_name`, the one place that does) and carries a
note wherever it is negative. The rows are a function of ledger rows only: the journal's (what was
actually paid, :meth:`carecontract.payments.book.PaymentBook.paid_rows`) or, for a book closed
without the calendar, the statements'. The CLI's ``pay`` table, the report, the dashboard, the
service and money by kind (:mod:`carecontract.publish.money`) all read these rows
(:func:`payment_components`, pivoted by :func:`component_table`), so they cannot disagree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from carecontract.payments import accounts
from carecontract.payments.ledger import to_pence
from carecontract.terms.model import Contract
from carecontract.terms.names import organisation

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
VAT = "VAT the prime cannot recover (to HMRC)"
SUSPENSE = "held in suspense while a dispute is open"
WITH_PRIME = "with the prime, not yet passed on"
_NOTES = {
    "gain_share": "negative: money returned to the commissioners from an underspend",
    "true_up": "negative: the commissioners paid more on account than was due, and are repaid",
    "loss_share": "negative: the prime bears its share of an overspend, out of what it kept",
    "held": "negative: the prime has passed on more than it has received so far",
    "dispute": "negative: money moved back out of a dispute (held, returned or awarded)",
}


def account_name(account: str, contract: Contract) -> str:
    """A ledger account as a reader knows it: the party's name and its role, not its ledger code."""
    kind, code = accounts.kind(account), accounts.code(account)
    if account == accounts.HMRC_VAT:
        return "HMRC (irrecoverable VAT)"
    if kind == accounts.SUSPENSE:
        return f"suspense (dispute {code})" if ":" in account else "suspense"
    role = {
        accounts.COMMISSIONER: ("commissioner", "{} (pays)"),
        accounts.PRIME: ("provider", "{} (prime, passes on)"),
        accounts.MANAGEMENT: ("provider", "{}: management share kept by the prime"),
        accounts.SUBCONTRACTOR: ("provider", "{} (subcontractor, for care)"),
    }.get(kind)
    if role is None:
        return account
    return role[1].format(organisation(code, contract, role[0]))


def _went(account: str, rule: str, contract: Contract) -> tuple[str, str, str]:
    """(component, group, account shown) of a posting to a payee."""
    kind = accounts.kind(account)
    if kind == accounts.MANAGEMENT:
        group = "gain_loss_prime" if rule in ("gain_share", "loss_share") else "fee"
        return _MANAGEMENT.get(rule, rule), group, account
    if kind == accounts.SUBCONTRACTOR:
        return (
            f"subcontractor {account_name(account, contract).removesuffix(' (subcontractor, for care)')}",
            ("subcontractor"),
            account,
        )
    if account == accounts.HMRC_VAT:
        return VAT, "vat", account
    if kind == accounts.SUSPENSE:
        return SUSPENSE, "suspense", accounts.SUSPENSE
    if kind == accounts.PRIME:
        return WITH_PRIME, "held", account
    return account_name(account, contract), "other", account


def payment_components(rows: Iterable[Mapping[str, Any]], contract: Contract) -> list[dict[str, Any]]:
    """Rows of (``year``, ``section``, ``component``, ``group``, ``account``, ``name``, ``pence``, ``note``).

    Within each year the ``paid by the commissioners`` rows and the ``went to`` rows sum to the same
    total; ``account`` is the ledger account (``commissioners`` for the commissioners together),
    ``name`` the account in words, ``group`` a stable key for charts and money by kind (the rule for
    money paid in; ``fee``, ``gain_loss_prime``, ``vat``, ``subcontractor``, ``suspense``, ``held``
    for money that went out), ``component`` what the money was in words.
    """
    cells: dict[tuple[int, str, str, str, str], int] = defaultdict(int)
    for r in rows:
        year, account, rule, pence = int(r["period"]), str(r["account"]), str(r["rule"]), int(r["pence"])
        if accounts.kind(account) == accounts.COMMISSIONER:
            cells[(year, PAID, _IN.get(rule, rule), rule, "commissioners")] -= pence
        else:
            component, group, shown = _went(account, rule, contract)
            cells[(year, WENT, component, group, shown)] += pence
    out = []
    for (year, section, component, group, account), pence in sorted(cells.items(), key=_order):
        if not pence and group != "subcontractor":
            continue
        out.append(
            {
                "year": year,
                "section": section,
                "component": component,
                "group": group,
                "account": account,
                "name": "the commissioners" if account == "commissioners" else account_name(account, contract),
                "pence": pence,
                "note": _note(group, section, pence),
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
        within = len(order) + (0 if component == VAT else 1 if component.startswith("subcontractor") else 2)
    return (rank, within, component)


def _order(item: tuple[tuple[int, str, str, str, str], int]) -> tuple[Any, ...]:
    (year, section, component, _group, _account), _ = item
    return (year, *component_order(section, component))


def _note(group: str, section: str, pence: int) -> str:
    if pence >= 0:
        return ""
    if section == PAID and group == "gain_share":
        return _NOTES["gain_share"]
    if group == "true_up":
        return _NOTES["true_up"]
    if group == "gain_loss_prime":
        return _NOTES["loss_share"]
    if group == "held":
        return _NOTES["held"]
    if group.startswith("dispute"):
        return _NOTES["dispute"]
    return "negative: money flowed back the other way"


def totals(components: Iterable[Mapping[str, Any]]) -> dict[int, dict[str, int]]:
    """Each year's total per section (``paid by the commissioners`` and ``went to``): equal in a balanced ledger."""
    out: dict[int, dict[str, int]] = defaultdict(lambda: {PAID: 0, WENT: 0})
    for c in components:
        out[c["year"]][c["section"]] += c["pence"]
    return dict(out)


def by_group(components: Iterable[Mapping[str, Any]]) -> dict[int, dict[str, int]]:
    """Each year's pence by ``group`` (money in by rule, money out by payee group), for charts and notes."""
    out: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in components:
        out[c["year"]][c["group"]] += c["pence"]
    return {y: dict(g) for y, g in out.items()}


def prices(contract: Contract) -> dict[int, int]:
    """Each contract year's planned price, in pence, by start year."""
    return {
        d.year: to_pence(v) for d, v in zip(contract.contract_years(), contract.value_per_year().values(), strict=True)
    }


def component_table(
    components: list[Mapping[str, Any]], contract: Contract, years: Iterable[int] = ()
) -> dict[str, Any]:
    """The components pivoted for a table: one line per component, one column per year, the two
    sections' totals (equal where the year ``balanced``), the price beside them, and numbered notes.

    The CLI, the report and the dashboard (through the service) all render this, so each shows the
    same lines in the same order with the same notes.
    """
    ys = sorted({c["year"] for c in components} | set(years))
    sums = totals(components)
    notes: list[str] = []
    lines = []
    for section in (PAID, WENT):
        names = sorted(
            {c["component"] for c in components if c["section"] == section}, key=lambda n: component_order(section, n)
        )
        for component in names:
            hit = [c for c in components if c["section"] == section and c["component"] == component]
            cells: dict[int, int | None] = {y: None for y in ys}
            marks: dict[int, int | None] = {y: None for y in ys}
            for c in hit:
                cells[c["year"]] = (cells[c["year"]] or 0) + c["pence"]
                if c["note"]:
                    if c["note"] not in notes:
                        notes.append(c["note"])
                    marks[c["year"]] = notes.index(c["note"]) + 1
            lines.append(
                {
                    "section": section,
                    "component": component,
                    "group": hit[0]["group"],
                    "account": hit[0]["account"],
                    "name": hit[0]["name"],
                    "pence": cells,
                    "note": marks,
                }
            )
    price = prices(contract)
    return {
        "years": ys,
        "lines": lines,
        "totals": {y: dict(sums.get(y, {PAID: 0, WENT: 0})) for y in ys},
        "balanced": {y: sums.get(y, {PAID: 0})[PAID] == sums.get(y, {WENT: 0})[WENT] for y in ys},
        "price": {y: price.get(y) for y in ys},
        "notes": notes,
    }
