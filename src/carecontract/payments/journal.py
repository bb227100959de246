"""The journal: every payment actually posted for a contract, in the order it was posted, append-only.

The payment book (:mod:`carecontract.payments.book`) holds *statements*: what the rules say is due
for a year on one view of the store, versioned. The journal holds what was *paid*: payments on
account, each reconciliation's true-up and the prime's onward payments, the differences a
subsequent reconciliation posts, and the moves in and out of suspense while a dispute is open.
Each entry is keyed by its calendar event (``on_account:2024:3``, ``reconciliation:2024:1``,
``dispute:D1:open`` ...), so posting one twice is impossible and ``pay`` run again to the same date
posts nothing. Every transaction balances when it is made (:class:`~carecontract.payments.ledger.Transaction`).

Layout: ``<book root>/journal.json``, replaced atomically under the book's lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from carecontract.payments.ledger import Posting, Transaction
from carecontract.records.store import write_json_atomic


def transaction_dict(txn: Transaction) -> dict[str, Any]:
    return {
        "id": txn.id,
        "period": txn.period,
        "rule": txn.rule,
        "narration": txn.narration,
        "postings": [[p.account, p.pence] for p in txn.postings],
    }


def transaction_of(data: dict[str, Any]) -> Transaction:
    """A stored transaction, checked again to balance as it is read (as Beancount checks on load)."""
    postings = tuple(Posting(a, int(p)) for a, p in data["postings"])
    return Transaction(data["id"], int(data["period"]), data["rule"], data["narration"], postings)


class Journal:
    """The posted payments of one book (a contract's terms, with any what-ifs, over one store)."""

    def __init__(self, root: Path, contract: str) -> None:
        self.root = Path(root)
        self.contract = contract
        self.path = self.root / "journal.json"

    def load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"contract": self.contract, "entries": [], "disputes": []}
        data = json.loads(self.path.read_text())
        for entry in data["entries"]:
            for txn in entry["transactions"]:
                transaction_of(txn)  # an edited file that no longer balances fails here
        return data

    @contextlib.contextmanager
    def editing(self) -> Iterator[dict[str, Any]]:
        """The journal, locked; whatever is appended to it is committed in one atomic replace."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".journal.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self.load()
            yield data
            write_json_atomic(self.path, data)

    def entries(self) -> list[dict[str, Any]]:
        return self.load()["entries"]

    def disputes(self) -> list[dict[str, Any]]:
        return self.load()["disputes"]

    def rows(self, years: list[int] | None = None) -> list[dict[str, Any]]:
        """Every posting as a ledger row (``txn``, ``period``, ``rule``, ``narration``, ``account``,
        ``pence``) with the event that posted it (``event``) and its date (``on``)."""
        return entry_rows(self.entries(), years)


def entry_rows(entries: list[dict[str, Any]], years: list[int] | None = None) -> list[dict[str, Any]]:
    out = []
    for entry in entries:
        for txn in entry["transactions"]:
            if years is not None and txn["period"] not in years:
                continue
            for account, pence in txn["postings"]:
                out.append(
                    {
                        "txn": txn["id"],
                        "period": txn["period"],
                        "rule": txn["rule"],
                        "narration": txn["narration"],
                        "account": account,
                        "pence": int(pence),
                        "event": entry["key"],
                        "on": entry["on"],
                    }
                )
    return out
