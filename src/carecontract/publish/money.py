"""Where the money went by kind of organisation, from the one set of payment components.

The seeds' campaigners asked how much of an NHS contract flows to private companies. Each party in
the terms has a kind (NHS trust, independent sector, voluntary/hospice, prime consortium); this
sums each year's payment components (:func:`carecontract.payments.components.payment_components`,
the one home of where each pound went) by the kind of who received them, management fees,
gain/loss shares and VAT included, with the share of the year's contract value each received. It is
a function of ledger rows (the journal's where payments were posted through the calendar, else the
closed book's) and the terms, so the report, service, OCDS and notebook show the same figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from carecontract.payments import accounts
from carecontract.payments.components import PAID, payment_components, prices
from carecontract.terms.model import Contract

KIND_NAMES = {
    "nhs_trust": "NHS trusts",
    "independent_sector": "Independent sector",
    "voluntary_hospice": "Voluntary sector and hospices",
    "prime_consortium": "Prime consortium (management and its gain/loss share)",
    "hmrc": "HMRC (irrecoverable VAT)",
    "suspense": "Held in suspense (an open dispute)",
    "with_prime": "With the prime, not yet passed on",
    None: "Kind not stated in the terms",
}
_RETURNED = ("gain_share", "loss_share")  # money in that is the commissioners' gain/loss share


def _kind(component: Mapping[str, Any], contract: Contract) -> str | None:
    group = component["group"]
    if group in ("fee", "gain_loss_prime"):
        return contract.prime.kind or "prime_consortium"
    if group == "subcontractor":
        return contract.kind_of(accounts.code(component["account"]))
    return {"vat": "hmrc", "suspense": "suspense", "held": "with_prime"}.get(group)


def money_by_kind(rows: Iterable[Mapping[str, Any]], contract: Contract) -> list[dict[str, Any]]:
    """What each kind of organisation received each year (management fees, gain/loss shares and VAT
    included), and its share of the year's contract value. Money returned to the commissioners is a
    row of its own ("returned to the commissioners"), so the payees' shares and it add up to what the
    commissioners paid the prime (on account and at reconciliation)."""
    by: dict[tuple[int, str | None], int] = defaultdict(int)
    returned: dict[int, int] = defaultdict(int)
    for c in payment_components(rows, contract):
        if c["section"] == PAID:
            if c["group"] in _RETURNED:
                returned[c["year"]] -= c["pence"]
        else:
            by[(c["year"], _kind(c, contract))] += c["pence"]
    price = prices(contract)
    out = [
        _row(year, kind or "not_stated", KIND_NAMES.get(kind, kind), pence, price.get(year))
        for (year, kind), pence in sorted(by.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))
        if pence
    ]
    for year, pence in sorted(returned.items()):
        if pence:
            label = (
                "Returned to the commissioners (gain/loss share)"
                if pence > 0
                else "Paid in addition by the commissioners (loss share)"
            )
            out.append(_row(year, "returned_to_commissioners", label, pence, price.get(year)))
    return sorted(out, key=lambda k: k["year"])  # stable: each year's payees, then what was returned


def _row(year: int, kind: str, label: str, pence: int, price: int | None) -> dict[str, Any]:
    return {
        "year": year,
        "kind": kind,
        "label": label,
        "pence": pence,
        "gbp": pence / 100,
        "share_of_value": None if not price else pence / price,
    }
