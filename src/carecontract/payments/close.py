"""Closing contract years for a command or a notebook: which years, close them, read the ledger back.

The book (:mod:`carecontract.payments.book`) closes what it is told to; this module decides what to
tell it (the years asked for, checked against the contract, or every ended year the store covers)
and returns the result as one value, :class:`PayRun`, that the CLI renders and the API returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carecontract.errors import UserError
from carecontract.payments.book import PaymentBook, covered_years
from carecontract.payments.ledger import net_by_account
from carecontract.records.store import AsAt, Store
from carecontract.run import Run
from carecontract.terms.loader import Terms
from carecontract.terms.model import Contract

if TYPE_CHECKING:
    import pandas as pd

Progress = Callable[[str, float], None]


def _no_progress(step: str, done: float) -> None:
    """A progress callback that shows nothing."""


class NothingToPay(UserError):
    """The store covers no ended contract year, or a year asked for is not one of the contract's."""


def payable_years(contract: Contract, store: Run | Store, requested: list[int] | None = None) -> list[int]:
    """The contract years to close: those asked for, checked, else every ended year the store covers.

    Raises :class:`NothingToPay` with what to do when there are none.
    """
    if requested:
        starts = [d.year for d in contract.contract_years()]
        unknown = [y for y in requested if y not in starts]
        if unknown:
            raise NothingToPay(
                f"{contract.name} has no contract year starting in {unknown} (years: {starts[0]}–{starts[-1]})"
            )
        return list(requested)
    run = Run.of(store)
    years = covered_years(contract, run)
    if not years:
        first, last = run.event_range()
        if first is None:
            raise NothingToPay(f"{run.store.root}: the store has no accepted events to pay on")
        raise NothingToPay(
            f"{run.store.root}: its events ({first} to {last}) cover no ended year of {contract.name} "
            f"({contract.term.start} to {contract.term.end}); synthesise data for those years with --start"
        )
    return years


@dataclass
class PayRun:
    """What closing some contract years did: each period's outcome and the ledger's postings.

    ``by_account`` is each account's net over the periods (from :func:`net_by_account`), so the
    whole ledger sums to ``sum_pence``, which is zero when it balances.
    """

    periods: list[dict[str, Any]]
    entries: list[dict[str, Any]]
    by_account: dict[str, int] = field(default_factory=dict)

    @property
    def sum_pence(self) -> int:
        return sum(int(r["pence"]) for r in self.entries)

    @property
    def balanced(self) -> bool:
        return self.sum_pence == 0

    def ledger(self) -> pd.DataFrame:
        """The postings as a DataFrame, one row per posting."""
        import pandas as pd

        return pd.DataFrame(self.entries)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "balanced": self.balanced,
            "sum_pence": self.sum_pence,
            "by_account": self.by_account,
            "periods": self.periods,
        }


def close_periods(
    terms: Terms,
    store: str | Path | Store,
    periods: list[int] | None = None,
    engine: str = "duckdb",
    spark_master: str | None = None,
    progress: Progress = _no_progress,
    as_at: AsAt = None,
) -> PayRun:
    """Close the contract years asked for (default: every ended year with data) and read back their ledger.

    The close reads the store as at ``as_at`` (or a ``store`` given with its own; default: the latest
    submission now), and each version it makes records that view.
    """
    run = Run(store, terms, engine=engine, spark_master=spark_master, as_at=as_at)
    years = payable_years(terms.contract, run, periods)  # the store's event range, read once for both
    if periods:  # a year asked for must have ended and hold data, or it books the price on no achievement
        from datetime import date

        from carecontract.payments.settle import choose_years

        choose_years(terms.contract, run, date.today(), years)
    progress("closing periods", 0.0)
    book = PaymentBook(run, terms)
    closed = book.close(years)
    progress("closing periods", 1.0)
    rows = book.ledger_rows(years)
    return PayRun(closed, rows, net_by_account(rows, by_period=False))
