"""The payment calendar of one contract year: when each payment on account and each reconciliation falls due.

Pure date arithmetic on the terms (``payments.calendar``, :class:`~carecontract.terms.model.PaymentCalendar`):

- **payments on account**, monthly or quarterly, on the first day of each month or quarter of the
  contract year, of ``on_account_share`` × the year's planned price (rule 1 of
  :mod:`carecontract.payments.rules`), split between the instalments to the penny;
- the **reconciliation**, ``reconcile_after_months`` after the year ends (the day after its last
  day), as 42 CFR 510.305(d)(1) reconciles "beginning 2 months after the end of each performance
  year";
- the **subsequent reconciliation**, ``subsequent_after_months`` after the year ends, on fuller data;
- after each reconciliation is issued, a **dispute window** (42 CFR 512.290(a): a notice of error
  within 45 days, or the amount is deemed binding) and a **reply deadline** (30 days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta

from carecontract.payments.ledger import split_pence
from carecontract.payments.rules import portion, year_price
from carecontract.terms.model import Contract

#: the order of events falling on the same day: instalments before a reconciliation of an earlier year
KIND_ORDER = {"on_account": 0, "reconciliation": 1, "subsequent": 2}


@dataclass(frozen=True)
class Due:
    """One event of the calendar: what, for which contract year (by the calendar year it starts in), when."""

    kind: str  # on_account | reconciliation | subsequent
    year: int
    on: date
    seq: int = 0  # the instalment's number in the year (1-based); 1 or 2 for reconciliations
    pence: int = 0  # an instalment's amount (0 for a reconciliation: computed from the data)

    @property
    def key(self) -> str:
        """The event's identity in the journal: posting it twice is impossible."""
        return f"{self.kind}:{self.year}:{self.seq}"


def add_months(day: date, months: int) -> date:
    return day + relativedelta(months=months)


def year_end(contract: Contract, year_index: int) -> date:
    """The day after contract year ``year_index``'s last day: the point the calendar counts from."""
    return contract.term.year_start(year_index + 1)


def instalments(contract: Contract, year_index: int) -> list[Due]:
    """The year's payments on account, each dated and in pence, adding up to the planned amount exactly."""
    cal = contract.payments.calendar
    if cal.on_account == "none" or not cal.on_account_share:
        return []
    n, step = (12, 1) if cal.on_account == "monthly" else (4, 3)
    start = contract.term.year_start(year_index)
    planned = portion(year_price(contract, year_index), cal.on_account_share)
    parts = split_pence(planned, {f"{k:02d}": 1.0 for k in range(n)})
    return [Due("on_account", start.year, add_months(start, k * step), k + 1, parts[f"{k:02d}"]) for k in range(n)]


def reconciliations(contract: Contract, year_index: int) -> list[Due]:
    """The year's reconciliation and, if the terms have one, its subsequent reconciliation."""
    cal = contract.payments.calendar
    end, year = year_end(contract, year_index), contract.term.year_start(year_index).year
    out = [Due("reconciliation", year, add_months(end, cal.reconcile_after_months), 1)]
    if cal.subsequent_after_months is not None:
        out.append(Due("subsequent", year, add_months(end, cal.subsequent_after_months), 2))
    return out


def schedule(contract: Contract, year_indices: list[int], until: date) -> list[Due]:
    """Every event of the given years due on or before ``until``, in the order they are posted."""
    events = [d for i in year_indices for d in (*instalments(contract, i), *reconciliations(contract, i))]
    return sorted((d for d in events if d.on <= until), key=lambda d: (d.on, KIND_ORDER[d.kind], d.year, d.seq))


def deemed_final(issued: date, contract: Contract) -> date:
    """The day a reconciliation issued on ``issued`` becomes binding unless a notice of error was given."""
    return issued + timedelta(days=contract.payments.calendar.dispute_window_days)


def reply_due(noticed: date, contract: Contract) -> date:
    """The day a reply to a notice of error given on ``noticed`` is due."""
    return noticed + timedelta(days=contract.payments.calendar.reply_within_days)
