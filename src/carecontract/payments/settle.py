"""``carecontract pay``: post what the calendar says is due up to a date, once.

For each contract year asked for (default: every year that has ended by ``until`` and that the
store holds events for), in date order (:func:`carecontract.payments.calendar.schedule`):

1. **payments on account**: each commissioner pays its share of each instalment to the prime;
2. **the reconciliation**: the year's amounts are computed by the payment rules on the store *as at*
   the reconciliation date (42 CFR 510.305(c): "the most recent claims data available"; 42 CFR
   512.285(b)(2): "claims data available at the time of reconciliation") and kept as a statement
   in the payment book; the journal then posts the **true-up** (each commissioner's amount due less
   what it paid on account) and the prime's onward payments (its fee, VAT, gain/loss share,
   subcontractors), each as its own transaction;
3. **the subsequent reconciliation**: the same on the store as at its later date; only the
   difference from the first is posted, with a **restatement notice** saying which measures,
   costs and amounts moved and how many records changed between the two views.

A store loaded after a reconciliation date (a book caught up late, as the demo's) held nothing for
the year on that date: the reconciliation then reads the store as it stands when posted, and says
so (``late``). Posting is idempotent: each event has a key in the journal, so running ``pay``
again to the same date posts nothing. A year that has not ended by ``until``, or that the store
holds no events for, is refused: it would book the price on an achievement of zero.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pyarrow.parquet as pq

from carecontract.engine import Engine
from carecontract.errors import UserError
from carecontract.payments import accounts
from carecontract.payments.book import PaymentBook
from carecontract.payments.calendar import Due, deemed_final, schedule, year_end
from carecontract.payments.journal import Journal, entry_rows, transaction_dict
from carecontract.payments.ledger import Ledger, Posting, Transaction, split_pence
from carecontract.records import duck
from carecontract.records.store import Store
from carecontract.run import Run, StoreLike
from carecontract.terms.loader import Terms
from carecontract.terms.model import Contract


class PayError(UserError):
    """A pay run that cannot be done as asked: a year not ended, a year without data, a date to come."""


@dataclass
class Settlement:
    """What a ``pay`` run did: the events it posted now, every event posted so far, and what comes next."""

    until: date
    years: list[int]
    posted: list[dict[str, Any]]
    entries: list[dict[str, Any]]
    upcoming: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return entry_rows(self.entries, self.years)

    @property
    def sum_pence(self) -> int:
        return sum(r["pence"] for r in self.rows)

    @property
    def balanced(self) -> bool:
        return self.sum_pence == 0

    def ledger(self) -> Any:
        """Every posting of the years posted (payments on account, true-ups, reconciliations,
        disputes), one row per posting, as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def components(self, contract: Contract) -> Any:
        """Where the money went, as the ``pay`` table shows it
        (:func:`carecontract.payments.components.payment_components`), as a DataFrame."""
        import pandas as pd

        from carecontract.payments.components import payment_components

        return pd.DataFrame(payment_components(self.rows, contract))

    def as_dict(self) -> dict[str, Any]:
        return {
            "until": self.until,
            "years": self.years,
            "posted": [e["key"] for e in self.posted],
            "entries": self.entries,
            "upcoming": self.upcoming,
            "balanced": self.balanced,
            "sum_pence": self.sum_pence,
        }


def holds_events(store: Store, start: date, end: date) -> bool:
    """Whether the store's view holds any accepted event dated in [start, end]."""
    con = store.connect()
    try:
        row = con.execute("SELECT count(*) FROM events WHERE event_date BETWEEN ? AND ?", [start, end]).fetchone()
        return bool(row and row[0])
    finally:
        con.close()


def _index(contract: Contract, year: int) -> int:
    return [d.year for d in contract.contract_years()].index(year)


def _label(contract: Contract, year: int) -> str:
    return f"{year}/{(year + 1) % 100:02d}"


def choose_years(contract: Contract, run: Run, until: date, requested: list[int] | None) -> list[int]:
    """The years to post: those asked for (each ended by ``until`` and holding data), else every such year."""
    starts = [d.year for d in contract.contract_years()]
    first, last = run.event_range()
    held = f"the store holds events from {first} to {last}" if first else "the store holds no events"
    if requested:
        unknown = [y for y in requested if y not in starts]
        if unknown:
            raise PayError(
                f"{contract.name} has no contract year starting in {unknown} (years: {starts[0]}–{starts[-1]})"
            )
        for y in requested:
            i = _index(contract, y)
            if year_end(contract, i) > until:
                raise PayError(
                    f"{_label(contract, y)} has not ended by {until} (its last day is {contract.term.year_end(i)}): "
                    "it cannot be reconciled yet"
                )
            if not holds_events(run.store, contract.term.year_start(i), contract.term.year_end(i)):
                raise PayError(f"{_label(contract, y)}: {held}, none in that year; nothing to reconcile it on")
        return sorted(requested)
    years = [
        s.year
        for i, s in enumerate(contract.contract_years())
        if year_end(contract, i) <= until and first is not None and s <= last and contract.term.year_end(i) >= first
    ]
    if not years:
        raise PayError(f"{run.store.root}: {held}; no year of {contract.name} that has ended by {until} has data")
    return years


def post_until(
    terms: Terms,
    store: StoreLike | Run,
    until: date | None = None,
    years: list[int] | None = None,
    engine: Engine = "duckdb",
    spark_master: str | None = None,
    today: date | None = None,
) -> Settlement:
    """Post every payment due for ``years`` on or before ``until`` (default today) that is not posted yet."""
    today = today or date.today()
    until = until or today
    if until > today:
        raise PayError(f"--until {until} is after today ({today}): payments are posted when they fall due")
    latest = Run.of(store, terms, engine=engine, spark_master=spark_master)
    contract = terms.contract
    chosen = choose_years(contract, latest, until, years)
    book = PaymentBook(latest, terms)
    journal = Journal(book.root, contract.name)
    posted: list[dict[str, Any]] = []
    with journal.editing() as data:
        done = {e["key"] for e in data["entries"]}
        for due in schedule(contract, [_index(contract, y) for y in chosen], until):
            if due.key in done:
                continue
            if due.kind == "on_account":
                entry = _on_account(contract, due)
            else:
                entry = _reconcile(terms, latest, data["entries"], due, today)
            data["entries"].append(entry)
            posted.append(entry)
        entries = data["entries"]
    upcoming = [
        {"key": d.key, "on": d.on.isoformat()}
        for d in schedule(contract, [_index(contract, y) for y in chosen], date.max)
        if d.on > until and d.kind != "on_account"
    ]
    return Settlement(until, chosen, posted, entries, upcoming)


def _entry(event: Due, transactions: list[Transaction], **extra: Any) -> dict[str, Any]:
    return {
        "key": event.key,
        "kind": event.kind,
        "year": event.year,
        "on": event.on.isoformat(),
        "posted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "transactions": [transaction_dict(t) for t in transactions],
        **extra,
    }


def _on_account(contract: Contract, due: Due) -> dict[str, Any]:
    """One instalment: each commissioner pays its share of it to the prime."""
    ledger = Ledger()
    prime = accounts.prime(contract.prime.code)
    shares = {accounts.commissioner(c.code): c.share for c in contract.commissioners}
    narration = f"payment on account {due.seq} of the year's planned price"
    for account, pence in split_pence(due.pence, shares).items():
        ledger.transfer(f"{due.key}-{account}", due.year, "on_account", narration, account, prime, pence)
    return _entry(due, ledger.transactions, pence=due.pence)


def _view(terms: Terms, latest: Run, due: Due) -> tuple[Run, bool]:
    """The store as at the reconciliation date; the latest view if it held no events for the year then."""
    contract = terms.contract
    i = _index(contract, due.year)
    asked = Run(latest.store.root, terms, latest.engine, latest.spark_master, as_at=due.on)
    if asked.version is not None and holds_events(asked.store, contract.term.year_start(i), contract.term.year_end(i)):
        return asked, False
    return latest, True


def _statement(terms: Terms, run: Run, year: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The year's statement on ``run``'s view (closed into the payment book) and its ledger rows."""
    book = PaymentBook(run, terms)
    entry = book.close([year])[0]
    rows = pq.read_table(book.root / entry["file"]).to_pylist()
    return entry, rows


def _due_by_rule(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Pence by rule and account; the commissioners' contract payment becomes the amount the true-up settles."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        rule = "true_up" if r["rule"] == "contract_payment" else r["rule"]
        out[rule][r["account"]] += int(r["pence"])
    return {rule: dict(sorted(v.items())) for rule, v in sorted(out.items())}


NARRATION = {
    "true_up": "true-up: the amount due at reconciliation less what was paid on account",
    "stage1_fee": "what the prime keeps: its stage 1 fee",
    "management_fee": "what the prime keeps: its management fee",
    "vat": "VAT the prime cannot recover on subcontracted care",
    "gain_share": "gain share: an underspend shared between the commissioners and the prime",
    "loss_share": "loss share: an overspend shared between the commissioners and the prime",
    "subcontract_payment": "prime pays a subcontractor",
}


def _transactions(due: Due, amounts: dict[str, dict[str, int]], what: str) -> list[Transaction]:
    """One balanced transaction per rule from net amounts by account (each rule's amounts sum to zero)."""
    out = []
    for rule, by_account in amounts.items():
        postings = tuple(Posting(a, p) for a, p in by_account.items() if p)
        if postings:
            narration = f"{what}: {NARRATION.get(rule, rule)}"
            out.append(Transaction(f"{due.key}-{rule}", due.year, rule, narration, postings))
    return out


def _reconcile(terms: Terms, latest: Run, entries: list[dict[str, Any]], due: Due, today: date) -> dict[str, Any]:
    contract = terms.contract
    run, late = _view(terms, latest, due)
    statement, rows = _statement(terms, run, due.year)
    due_now = _due_by_rule(rows)
    amounts = settle_amounts(due, due_now, entries)
    notice, what = None, "reconciliation"
    if due.kind != "reconciliation":
        first = next(e for e in entries if e["key"] == f"reconciliation:{due.year}:1")
        notice = restatement_notice(contract, first, statement, latest.store.root)
        what = "subsequent reconciliation, the difference from the first"
    issued = max(due.on, today)
    return _entry(
        due,
        _transactions(due, amounts, what),
        as_at=due.on.isoformat(),
        late=late,
        store_version=statement.get("store_version"),
        statement_version=statement["version"],
        issued=issued.isoformat(),
        deemed_final=deemed_final(issued, contract).isoformat(),
        due=due_now,
        result=statement["result"],
        notice=notice,
    )


def settle_amounts(
    due: Due, due_now: dict[str, dict[str, int]], entries: list[dict[str, Any]]
) -> dict[str, dict[str, int]]:
    """What a reconciliation posts, by rule and account (pure): the first posts the year's amounts with
    the true-up against what was paid on account; a subsequent one only the difference from the
    reconciliation before it."""
    if due.kind == "reconciliation":
        paid = _on_account_paid(entries, due.year)
        owed = {a: p - paid.get(a, 0) for a, p in due_now.get("true_up", {}).items()}
        owed |= {a: -p for a, p in paid.items() if a not in owed}  # nothing due: what was paid comes back
        return {**due_now, "true_up": owed}
    before = None
    for e in entries:  # the latest reconciliation of the year before this one
        if e["year"] == due.year and e["kind"] in ("reconciliation", "subsequent"):
            before = e["due"]
    if before is None:
        raise PayError(f"{due.key}: the year's first reconciliation has not been posted")
    return _difference(due_now, before)


def _on_account_paid(entries: list[dict[str, Any]], year: int) -> dict[str, int]:
    """Each account's net on account for the year: paid (negative) or received (positive)."""
    paid: dict[str, int] = defaultdict(int)
    for r in entry_rows(entries, [year]):
        if r["rule"] == "on_account":
            paid[r["account"]] += r["pence"]
    return dict(paid)


def _difference(now: dict[str, dict[str, int]], before: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    out = {}
    for rule in sorted(set(now) | set(before)):
        a, b = now.get(rule, {}), before.get(rule, {})
        diff = {acc: a.get(acc, 0) - b.get(acc, 0) for acc in sorted(set(a) | set(b))}
        if any(diff.values()):
            out[rule] = diff
    return out


def records_changed(root: Any, before: str | None, after: str | None, start: date, end: date) -> dict[str, int]:
    """Records dated in [start, end] that differ between two views of the store (by submission id):
    new or corrected in the later view, and superseded or withdrawn since the earlier one."""

    def versions(as_at: str | None) -> Any:
        con = Store(root, as_at).connect()
        try:
            sql = "SELECT record_id, batch_id FROM events WHERE event_date BETWEEN ? AND ?"
            return con.sql(sql, params=[start, end]).to_arrow_table()
        finally:
            con.close()

    a, b = versions(before), versions(after)
    con = duck.connect()
    try:
        con.register("a", a)
        con.register("b", b)
        added = con.execute(
            "SELECT count(DISTINCT record_id) FROM b ANTI JOIN a USING (record_id, batch_id)"
        ).fetchone()
        gone = con.execute("SELECT count(DISTINCT record_id) FROM a ANTI JOIN b USING (record_id) ").fetchone()
        return {"new_or_corrected": int(added[0]), "withdrawn": int(gone[0])}
    finally:
        con.close()


def restatement_notice(
    contract: Contract, first: dict[str, Any], statement: dict[str, Any], root: Any
) -> dict[str, Any]:
    """What moved between the first reconciliation and this one, and why: measures, costs, records."""
    i = _index(contract, first["year"])
    r1, r2 = first["result"], statement["result"]
    rates = {
        m: {"before": r1.get("rates", {}).get(m), "after": r2.get("rates", {}).get(m)}
        for m in sorted(set(r1.get("rates", {})) | set(r2.get("rates", {})))
        if r1.get("rates", {}).get(m) != r2.get("rates", {}).get(m)
    }
    changed = records_changed(
        root,
        first.get("store_version"),
        statement.get("store_version"),
        contract.term.year_start(i),
        contract.term.year_end(i),
    )
    moved = {
        k: {"before": r1.get(k), "after": r2.get(k)}
        for k in ("achievement", "released_pence", "recorded_cost_pence", "paid_by_commissioners_pence", "vat_pence")
        if r1.get(k) != r2.get(k)
    }
    same = first.get("store_version") == statement.get("store_version")
    text = (
        "no submission since the first reconciliation: nothing moved"
        if same
        else f"{changed['new_or_corrected']:,} record(s) of the year new or corrected and {changed['withdrawn']:,} "
        f"withdrawn since the first reconciliation; {len(rates)} measure(s) moved"
        + (f" ({', '.join(rates)})" if rates else "")
    )
    return {
        "text": text,
        "measures": rates,
        "moved": moved,
        "records": changed,
        "from_version": first.get("store_version"),
        "to_version": statement.get("store_version"),
    }
