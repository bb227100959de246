"""Where the money went: a year's payment as components that add up, and by kind of organisation.

Both are functions of the ledger's rows (``txn, period, rule, account, pence``) and the terms, and
nothing else, so any surface (report, service, OCDS, notebook) shows the same figures and a finance
reader can follow every pound from the commissioners to each payee. The components reconcile by
construction of the ledger (every transaction sums to zero) and the tables check it:

    paid by the commissioners, net = management fee + prime's gain/loss share + VAT + subcontractors

A negative amount always carries a note saying why (money returned to the commissioners under the
gain/loss share; the prime bearing its share of an overspend), so no bar goes below zero unexplained.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from carecontract.payments import accounts
from carecontract.payments.ledger import to_pence
from carecontract.terms.model import Contract
from carecontract.terms.names import organisation

#: Each component of a year's payment, in the order a finance reader follows the money.
COMPONENTS = (
    ("withheld", "Price less what was paid: the at-risk pot not earned"),
    ("commissioners_paid", "Paid by the commissioners to the prime"),
    ("gain_loss_commissioners", "Gain/loss share with the commissioners (− returned to them)"),
    ("commissioners_net", "Net cost to the commissioners"),
    ("management_fee", "Prime's management fee (or Stage 1 fee)"),
    ("gain_loss_prime", "Prime's share of the under- or overspend"),
    ("vat", "VAT the prime cannot recover (to HMRC)"),
    ("subcontractors", "Paid to subcontractors for care"),
)
KIND_NAMES = {
    "nhs_trust": "NHS trusts",
    "independent_sector": "Independent sector",
    "voluntary_hospice": "Voluntary sector and hospices",
    "prime_consortium": "Prime consortium (management and its gain/loss share)",
    "hmrc": "HMRC (irrecoverable VAT)",
    None: "Kind not stated in the terms",
}


def account_name(account: str, contract: Contract) -> str:
    """A ledger account as a reader knows it: the party's name and its role, not its ledger code."""
    kind, code = accounts.kind(account), accounts.code(account)
    if account == accounts.HMRC_VAT:
        return "HMRC (irrecoverable VAT)"
    role = {
        accounts.COMMISSIONER: ("commissioner", "{} (pays)"),
        accounts.PRIME: ("provider", "{} (prime, passes on)"),
        accounts.MANAGEMENT: ("provider", "{}: management share kept by the prime"),
        accounts.SUBCONTRACTOR: ("provider", "{} (subcontractor, for care)"),
    }.get(kind)
    if role is None:
        return account
    return role[1].format(organisation(code, contract, role[0]))


def _by_txn(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        out[row["txn"]].append(row)
    return out


def payment_components(rows: Iterable[dict[str, Any]], contract: Contract) -> list[dict[str, Any]]:
    """Each contract year's payment, component by component, in pence, with notes for negatives.

    One function of the ledger rows (so the source can be switched, e.g. to on-account and reconciled
    rows, without touching any table). Each year's dict has every :data:`COMPONENTS` key, ``price``,
    ``to_subcontractor`` (by code), ``balanced`` (the components add up) and ``notes``.
    """
    years: dict[int, dict[str, Any]] = {}
    prices = {
        d.year: to_pence(v) for d, v in zip(contract.contract_years(), contract.value_per_year().values(), strict=True)
    }
    for txn, postings in _by_txn(rows).items():
        year = postings[0]["period"]
        y = years.setdefault(
            year,
            {"year": year, "price": prices.get(year), **{k: 0 for k, _ in COMPONENTS}, "to_subcontractor": {}},
        )
        rule = postings[0]["rule"]
        for p in postings:
            kind, pence = accounts.kind(p["account"]), p["pence"]
            if kind == accounts.COMMISSIONER:  # what commissioners pay is positive; − returned to them
                y["commissioners_paid" if rule == "contract_payment" else "gain_loss_commissioners"] -= pence
            elif kind == accounts.MANAGEMENT:
                y["gain_loss_prime" if rule in ("gain_share", "loss_share") else "management_fee"] += pence
            elif p["account"] == accounts.HMRC_VAT:
                y["vat"] += pence
            elif kind == accounts.SUBCONTRACTOR:
                y["subcontractors"] += pence
                code = accounts.code(p["account"])
                y["to_subcontractor"][code] = y["to_subcontractor"].get(code, 0) + pence
        del txn
    out = []
    for year in sorted(years):
        y = years[year]
        y["commissioners_net"] = y["commissioners_paid"] + y["gain_loss_commissioners"]
        y["withheld"] = None if y["price"] is None else y["price"] - y["commissioners_paid"]
        y["balanced"] = (
            y["commissioners_net"] == y["management_fee"] + y["gain_loss_prime"] + y["vat"] + y["subcontractors"]
        )
        y["notes"] = _notes(y)
        out.append(y)
    return out


def _notes(y: dict[str, Any]) -> list[str]:
    """Why an amount is negative, or why subcontractors were paid their cost and not the money for care."""
    notes = []
    if y["gain_loss_commissioners"] < 0:
        notes.append(
            "The gain/loss share is negative: care cost less than the money left for it (an underspend), "
            "and the commissioners' share of the difference was returned to them."
        )
    if y["gain_loss_commissioners"] > 0:
        notes.append("Care cost more than the money left for it: the commissioners paid their share of the overspend.")
    if y["gain_loss_prime"] < 0:
        notes.append("The prime bore its share of an overspend, from its management account.")
    if y["gain_loss_prime"] > 0:
        notes.append(
            "The prime kept its share of an underspend on top of its management fee; subcontractors were paid "
            "their recorded in-scope cost, not the whole money for care (the gain/loss share rule)."
        )
    return notes


def money_by_kind(rows: Iterable[dict[str, Any]], contract: Contract) -> list[dict[str, Any]]:
    """What each kind of organisation received each year (management fees, gain/loss shares and VAT
    included), and its share of the year's contract value. Money returned to the commissioners is a
    row of its own ("returned to the commissioners"), so the payees' shares and it add up to what the
    commissioners paid."""
    by: dict[tuple[int, str | None], int] = defaultdict(int)
    returned: dict[int, int] = defaultdict(int)
    prices = {
        d.year: to_pence(v) for d, v in zip(contract.contract_years(), contract.value_per_year().values(), strict=True)
    }
    for row in rows:
        kind, year = accounts.kind(row["account"]), row["period"]
        if kind == accounts.MANAGEMENT:
            by[(year, contract.prime.kind or "prime_consortium")] += row["pence"]
        elif kind == accounts.SUBCONTRACTOR:
            by[(year, contract.kind_of(accounts.code(row["account"])))] += row["pence"]
        elif row["account"] == accounts.HMRC_VAT:
            by[(year, "hmrc")] += row["pence"]
        elif kind == accounts.COMMISSIONER and row["rule"] != "contract_payment":
            returned[year] += row["pence"]
    out = []
    for (year, kind), pence in sorted(by.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        price = prices.get(year)
        out.append(
            {
                "year": year,
                "kind": kind or "not_stated",
                "label": KIND_NAMES.get(kind, kind),
                "pence": pence,
                "gbp": pence / 100,
                "share_of_value": None if not price else pence / price,
            }
        )
    for year, pence in sorted(returned.items()):
        if pence:
            price = prices.get(year)
            out.append(
                {
                    "year": year,
                    "kind": "returned_to_commissioners",
                    "label": "Returned to the commissioners (gain/loss share)"
                    if pence > 0
                    else "Paid in addition by the commissioners (loss share)",
                    "pence": pence,
                    "gbp": pence / 100,
                    "share_of_value": None if not price else pence / price,
                }
            )
    return sorted(out, key=lambda k: k["year"])  # stable: each year's payees, then what was returned
