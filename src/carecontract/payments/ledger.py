"""A double-entry ledger in integer pence, checked on every construction (as Beancount does).

Why integer pence: a payment split across four commissioners and a dozen subcontractors must
add up to the penny, every time, on every machine. Floats cannot promise that; integers can.

Sign convention: a posting is money *received* by an account (positive) or *paid* by it
(negative). Every transaction's postings sum to zero, so the whole ledger sums to zero, and an
account's balance is what it has received less what it has paid.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any


class UnbalancedTransaction(ValueError):
    """A transaction whose postings do not sum to zero: money created or lost."""


@dataclass(frozen=True)
class Posting:
    account: str
    pence: int

    def __post_init__(self) -> None:
        if not isinstance(self.pence, int) or isinstance(self.pence, bool):
            raise TypeError(f"{self.account}: amounts are whole pence (int), got {self.pence!r}")


@dataclass(frozen=True)
class Transaction:
    """One movement of money, with the rule that caused it (who pays whom, and why)."""

    id: str
    period: int  # the contract year, by the calendar year it starts in
    rule: str
    narration: str
    postings: tuple[Posting, ...]

    def __post_init__(self) -> None:
        total = sum(p.pence for p in self.postings)
        if total != 0:
            raise UnbalancedTransaction(f"transaction {self.id} ({self.rule}) is off by {total} pence")


@dataclass
class Ledger:
    transactions: list[Transaction] = field(default_factory=list)

    def add(self, txn: Transaction) -> None:
        self.transactions.append(txn)

    def transfer(self, txn_id: str, period: int, rule: str, narration: str, payer: str, payee: str, pence: int) -> None:
        """A payment of ``pence`` from ``payer`` to ``payee`` (nothing recorded for zero)."""
        if pence:
            self.add(Transaction(txn_id, period, rule, narration, (Posting(payer, -pence), Posting(payee, pence))))

    @property
    def postings(self) -> list[tuple[Transaction, Posting]]:
        return [(t, p) for t in self.transactions for p in t.postings]

    def rows(self, period: int | None = None) -> list[dict[str, Any]]:
        """The postings as ledger rows (``txn``, ``period``, ``rule``, ``narration``, ``account``,
        ``pence``), as the payment book stores them; only ``period``'s if given."""
        return [
            {
                "txn": t.id,
                "period": t.period,
                "rule": t.rule,
                "narration": t.narration,
                "account": p.account,
                "pence": p.pence,
            }
            for t, p in self.postings
            if period is None or t.period == period
        ]

    def balances(self, period: int | None = None) -> dict[str, int]:
        """Net pence per account (over every period, or ``period``'s), sorted by account."""
        return net_by_account(self.rows(period), by_period=False)

    def sum_pence(self) -> int:
        return sum(p.pence for _, p in self.postings)

    @property
    def balanced(self) -> bool:
        return self.sum_pence() == 0


def to_pence(pounds: Decimal | float | int) -> int:
    """Pounds to whole pence, rounding half to even (banker's rounding, as ledgers do)."""
    return int((Decimal(str(pounds)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def split_pence(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split ``total`` pence in proportion to ``weights`` so the parts add up to it exactly.

    Largest-remainder method: everyone gets the floor of their share, then the pence left over go
    one each to the largest remainders (ties by name, so the split is deterministic).
    """
    if total < 0:
        return {k: -v for k, v in split_pence(-total, weights).items()}
    positive = {k: w for k, w in weights.items() if w > 0}
    if not positive:
        raise ValueError("cannot split money between no one: every weight is zero")
    fractions = {k: Fraction(str(w)) for k, w in positive.items()}  # exact: no float rounding
    weight_sum = sum(fractions.values())
    exact = {k: total * w / weight_sum for k, w in fractions.items()}
    parts = {k: int(v) for k, v in exact.items()}  # floor, as every part is non-negative
    left = total - sum(parts.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - parts[k]), k))[:left]:
        parts[k] += 1
    return {k: parts.get(k, 0) for k in weights}


def net_by_account(rows: Iterable[Mapping[str, object]], *, by_period: bool = True) -> dict:
    """Net pence per account from ledger rows (``period``, ``account``, ``pence``), sorted by key.

    ``by_period=True`` keys by ``(period, account)``; otherwise by account over every period. The
    one place the CLI, the service and the report total a ledger, so they cannot disagree.
    """
    out: dict = defaultdict(int)
    for row in rows:
        key = (row["period"], row["account"]) if by_period else row["account"]
        out[key] += int(row["pence"])  # type: ignore[call-overload]
    return dict(sorted(out.items()))


def transfers(rows: list[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Mapping[str, Any], int]]:
    """One balanced transaction's postings as transfers between two accounts, each (payer, payee, pence).

    A rule's transaction may move money between several accounts at once (a journal's true-up from
    every commissioner to the prime); who paid whom is then matched greedily in posting order, so a
    two-account transfer is itself and the pairs' pence add up to what each account paid or received.
    """
    payers = [[r, -int(r["pence"])] for r in rows if int(r["pence"]) < 0]
    payees = [[r, int(r["pence"])] for r in rows if int(r["pence"]) > 0]
    out = []
    i = j = 0
    while i < len(payers) and j < len(payees):
        pence = min(payers[i][1], payees[j][1])
        out.append((payers[i][0], payees[j][0], pence))
        payers[i][1] -= pence
        payees[j][1] -= pence
        i += payers[i][1] == 0
        j += payees[j][1] == 0
    return out
