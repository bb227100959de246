"""Notices of calculation error against a reconciliation: open, respond, resolve.

Modelled on 42 CFR 512.290 (the Radiation Oncology Model's "timely error notice"): a party gives
written notice of a suspected error within the dispute window after the reconciliation report is
issued (45 days by default; after it the amount is "deemed binding"), the other side replies within
30 days, and the dispute is resolved. The states follow the Accord Project's obligation model
(``org.accordproject.obligation@1.0.0``: ``ObligationStatus`` … ``DISPUTED``, and the settlement
profile's evidence stages ``PENDING`` / ``SETTLED`` / ``REVERSED`` / ``DISPUTED``): here
``disputed`` (notice given), ``under_review`` (replied to) and ``resolved`` (upheld, partly upheld
or rejected, with the adjustment posted).

The money: while a dispute is open its amount sits in ``suspense:<id>`` — paid in by the side it is
claimed from (the commissioners, in their shares, when the prime says it is owed more; the prime,
when a commissioner says it was charged too much), so it is neither paid to the claimant nor lost.
The resolution pays the amount awarded to the claimant and the rest back to whoever paid it in,
so the suspense account is empty again. Every step is returned as a record for the decision log.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from carecontract.errors import UserError
from carecontract.payments import accounts
from carecontract.payments.calendar import reply_due
from carecontract.payments.journal import Journal, transaction_dict
from carecontract.payments.ledger import Ledger, split_pence
from carecontract.terms.model import Contract

Outcome = Literal["upheld", "partly", "rejected"]


class DisputeError(UserError):
    """A dispute step that cannot be taken as asked (window closed, unknown party, resolved already)."""


def _reconciliation(entries: list[dict[str, Any]], year: int, which: int | None) -> dict[str, Any]:
    recs = [e for e in entries if e["year"] == year and e["kind"] in ("reconciliation", "subsequent")]
    if which is not None:
        recs = [e for e in recs if e["key"].endswith(f":{which}")]
    if not recs:
        raise DisputeError(
            f"no reconciliation of the year starting {year} has been posted: run `carecontract pay` first"
        )
    return recs[-1]


def _party(contract: Contract, code: str) -> str:
    if code == contract.prime.code:
        return "prime"
    if code in {c.code for c in contract.commissioners}:
        return "commissioner"
    parties = ", ".join([contract.prime.code, *(c.code for c in contract.commissioners)])
    raise DisputeError(f"{code!r} is not a party to the reconciliation (the prime or a commissioner: {parties})")


def _record(step: str, dispute: dict[str, Any], on: date, text: str, who: str) -> dict[str, Any]:
    return {
        "step": step,
        "on": on.isoformat(),
        "who": who,
        "text": text,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def open_dispute(
    journal: Journal,
    contract: Contract,
    year: int,
    by: str,
    amount_pence: int,
    clause: str,
    evidence: str,
    on: date | None = None,
    reconciliation: int | None = None,
) -> dict[str, Any]:
    """Give notice of a calculation error in a reconciliation; the amount goes into suspense."""
    on = on or date.today()
    side = _party(contract, by)
    if amount_pence <= 0:
        raise DisputeError("the disputed amount must be more than zero")
    if not clause.strip() or not evidence.strip():
        raise DisputeError("a notice of error names the clause (--clause) and gives its evidence (--evidence)")
    with journal.editing() as data:
        rec = _reconciliation(data["entries"], year, reconciliation)
        issued, final = date.fromisoformat(rec["issued"]), date.fromisoformat(rec["deemed_final"])
        if on < issued:
            raise DisputeError(f"{rec['key']} is issued on {issued}: no notice can be given before it")
        if on > final:
            raise DisputeError(
                f"{rec['key']} was deemed final on {final} ({contract.payments.calendar.dispute_window_days} days "
                f"after it was issued on {issued}): a notice of error is out of time"
            )
        number = len(data["disputes"]) + 1
        dispute_id = f"D{number}"
        suspense = accounts.suspense(dispute_id)
        ledger = Ledger()
        narration = f"dispute {dispute_id}: the disputed amount held in suspense"
        if side == "prime":  # the prime says it is owed more: the commissioners hold it back, in their shares
            shares = {accounts.commissioner(c.code): c.share for c in contract.commissioners}
            held = split_pence(amount_pence, shares)
        else:  # a commissioner says it was charged too much: the prime holds that much back
            held = {accounts.prime(contract.prime.code): amount_pence}
        for account, pence in held.items():
            ledger.transfer(f"{dispute_id}-open-{account}", year, "dispute_held", narration, account, suspense, pence)
        dispute = {
            "id": dispute_id,
            "year": year,
            "reconciliation": rec["key"],
            "by": by,
            "claimant": accounts.prime(by) if side == "prime" else accounts.commissioner(by),
            "amount_pence": amount_pence,
            "held_from": held,
            "clause": clause,
            "evidence": evidence,
            "opened": on.isoformat(),
            "reply_due": reply_due(on, contract).isoformat(),
            "status": "disputed",
            "steps": [],
        }
        dispute["steps"].append(_record("open", dispute, on, evidence, by))
        data["disputes"].append(dispute)
        data["entries"].append(_journal_entry(f"dispute:{dispute_id}:open", year, on, ledger))
    return dispute


def respond(
    journal: Journal, contract: Contract, dispute_id: str, by: str, text: str, on: date | None = None
) -> dict[str, Any]:
    """Record the other side's reply to a notice of error; the dispute is then under review."""
    on = on or date.today()
    _party(contract, by)
    if not text.strip():
        raise DisputeError("a reply needs its text (--text)")
    with journal.editing() as data:
        dispute = _find(data, dispute_id)
        if dispute["status"] == "resolved":
            raise DisputeError(f"dispute {dispute_id} is resolved already")
        if by == dispute["by"]:
            raise DisputeError(f"{by} gave the notice of dispute {dispute_id}: the reply comes from the other side")
        step = _record("respond", dispute, on, text, by)
        step["late"] = on > date.fromisoformat(dispute["reply_due"])
        dispute["steps"].append(step)
        dispute["status"] = "under_review"
    return dispute


def resolve(
    journal: Journal,
    contract: Contract,
    dispute_id: str,
    outcome: Outcome,
    text: str,
    awarded_pence: int | None = None,
    on: date | None = None,
    who: str = "",
) -> dict[str, Any]:
    """Resolve a dispute: the amount awarded goes to the claimant, the rest back to who held it."""
    on = on or date.today()
    with journal.editing() as data:
        dispute = _find(data, dispute_id)
        if dispute["status"] == "resolved":
            raise DisputeError(f"dispute {dispute_id} is resolved already")
        amount = dispute["amount_pence"]
        if outcome == "upheld":
            awarded = amount
        elif outcome == "rejected":
            awarded = 0
        else:
            if awarded_pence is None or not 0 < awarded_pence < amount:
                raise DisputeError(f"a partly upheld dispute awards more than zero and less than £{amount / 100:,.2f}")
            awarded = awarded_pence
        suspense = accounts.suspense(dispute_id)
        held = {a: int(p) for a, p in dispute["held_from"].items()}
        # the award comes out of each holder's part in proportion, to the penny; the rest goes back
        award_parts = (
            split_pence(awarded, {a: float(p) for a, p in held.items()}) if awarded else dict.fromkeys(held, 0)
        )
        ledger = Ledger()
        year = dispute["year"]
        for account, part in held.items():
            back = part - award_parts[account]
            ledger.transfer(
                f"{dispute_id}-award-{account}",
                year,
                "dispute_resolved",
                f"dispute {dispute_id} {outcome}: the amount awarded to the claimant",
                suspense,
                dispute["claimant"],
                award_parts[account],
            )
            ledger.transfer(
                f"{dispute_id}-return-{account}",
                year,
                "dispute_resolved",
                f"dispute {dispute_id} {outcome}: the rest returned to who held it",
                suspense,
                account,
                back,
            )
        dispute["status"] = "resolved"
        dispute["outcome"] = outcome
        dispute["awarded_pence"] = awarded
        dispute["resolved"] = on.isoformat()
        dispute["steps"].append(_record("resolve", dispute, on, text, who))
        data["entries"].append(_journal_entry(f"dispute:{dispute_id}:resolve", year, on, ledger))
    return dispute


def _find(data: dict[str, Any], dispute_id: str) -> dict[str, Any]:
    for d in data["disputes"]:
        if d["id"] == dispute_id:
            return d
    known = ", ".join(d["id"] for d in data["disputes"]) or "none yet"
    raise DisputeError(f"no dispute {dispute_id!r} (disputes: {known})")


def _journal_entry(key: str, year: int, on: date, ledger: Ledger) -> dict[str, Any]:
    return {
        "key": key,
        "kind": "dispute",
        "year": year,
        "on": on.isoformat(),
        "posted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "transactions": [transaction_dict(t) for t in ledger.transactions],
    }


def list_disputes(journal: Journal) -> list[dict[str, Any]]:
    """Every dispute with its steps and state, for the CLI, the service and the OCDS release."""
    return journal.disputes()


def disputes_of(store: Any, terms: Any) -> list[dict[str, Any]]:
    """Every dispute in the official book of ``terms`` over ``store`` (a path or a Run): what the OCDS
    release and the service list, without knowing where the journal lives."""
    from carecontract.payments.book import PaymentBook

    book = PaymentBook(store, terms)
    return list_disputes(Journal(book.root, terms.contract.name))
