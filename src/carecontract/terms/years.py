"""Contract years: which contract year a date falls in, as a query expression.

A contract year is a property of the contract's term (an April contract's year runs 1 April to
31 March), so the arithmetic lives here with the terms. It is written as an Ibis expression
because it is applied to event dates inside queries (costs by year for payments, activity by
year for the baseline), on DuckDB or Spark alike; the same dates in Python come from
:meth:`carecontract.terms.model.Term.year_start` and :meth:`~carecontract.terms.model.Term.year_end`.
"""

from __future__ import annotations

import ibis


def contract_year(column: ibis.Value, start_month: int, start_day: int) -> ibis.Value:
    """The calendar year in which the contract year containing each date starts."""
    before = (column.month() < start_month) | ((column.month() == start_month) & (column.day() < start_day))
    return column.year() - before.cast("int32")


def year_label(start_year: int) -> str:
    """A contract year by the calendar year it starts in, as finance teams write it: 2024/25."""
    return f"{start_year}/{(start_year + 1) % 100:02d}"
