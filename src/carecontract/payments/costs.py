"""Recorded costs of the subcontractors' care, in scope, by contract year: the queries payments need.

The payment rules split money in proportion to these costs and share the difference from them
(:mod:`carecontract.payments.rules`); the stress test calibrates its first-year cost on them. An
event without a tumour site of its own takes its patient's first diagnosed site, so treatment
and end-of-life care count towards the cancer they belong to. Written in Ibis, so DuckDB and
Spark give the same pence.
"""

from __future__ import annotations

from datetime import date

import ibis
from ibis.expr.types import Table

from carecontract.run import Run
from carecontract.terms.model import Contract
from carecontract.terms.years import contract_year

#: pence by contract year (the calendar year it starts in), subcontractor and tumour site (None: any)
CostCube = dict[int, dict[str, dict[str | None, int]]]


def _with_site(events: Table, wanted: Table) -> tuple[Table, ibis.Value]:
    """``wanted`` with each event's tumour site: its own, else its patient's first diagnosed site."""
    first_site = (
        events.filter((events.event_type == "diagnosis") & events.tumour_site.notnull())
        .group_by("patient_id")
        .aggregate(first_site=lambda t: t.tumour_site.argmin(t.event_date))
    )
    joined = wanted.left_join(first_site, "patient_id")
    return joined, joined.tumour_site.coalesce(joined.first_site)


def _pence(table: Table) -> ibis.Value:
    return (table.cost_gbp.sum() * 100).round().cast("int64")


def subcontractor_costs(
    events: Table, codes: list[str], start: date, end: date, sites: list[str] | None = None
) -> dict[str, int]:
    """Recorded cost (pence) of each subcontractor's activity in [start, end], in scope if ``sites``."""
    if not codes:
        return {}
    wanted = events.filter(events.event_date.between(start, end), events.provider_code.isin(codes))
    if sites is not None:
        wanted, site = _with_site(events, wanted)
        wanted = wanted.filter(site.isin(sites))
    totals = wanted.group_by("provider_code").aggregate(pence=_pence(wanted))
    found = {r["provider_code"]: int(r["pence"] or 0) for r in totals.to_pyarrow().to_pylist()}
    return {code: found.get(code, 0) for code in codes}


def yearly_costs(events: Table, contract: Contract) -> CostCube:
    """Recorded cost (pence) by contract year, subcontractor and tumour site, for the whole term in
    one pass over the events.

    Closing many years then costs one scan rather than one per year (at 100M events and 9 years,
    the per-year queries were the largest part of a pay run). Costs are exact pence (DECIMAL), so
    summing the sites of a year gives exactly what :func:`subcontractor_costs` gives for it.
    """
    codes = [s.code for s in contract.subcontractors]
    if not codes:
        return {}
    start, last = contract.term.start, contract.term.last_day
    wanted = events.filter(events.event_date.between(start, last), events.provider_code.isin(codes))
    if contract.scope:
        wanted, site = _with_site(events, wanted)
    else:
        site = ibis.null("string")  # no scope by site: every event counts, whatever its site
    year = contract_year(wanted.event_date, start.month, start.day)
    cube = wanted.group_by(year=year, provider=wanted.provider_code, site=site).aggregate(pence=_pence(wanted))
    out: CostCube = {}
    for r in cube.to_pyarrow().to_pylist():
        out.setdefault(int(r["year"]), {}).setdefault(r["provider"], {})[r["site"]] = int(r["pence"] or 0)
    return out


def costs_by_year(run: Run, contract: Contract) -> CostCube:
    """:func:`yearly_costs` over the run's events, computed once per run for a contract's parties,
    term and scope (a pay run and a stress test calibrated in the same run share it)."""
    codes = tuple(s.code for s in contract.subcontractors)
    key = ("yearly_costs", codes, contract.term.start, contract.term.end, bool(contract.scope))
    return run.cached(key, lambda: yearly_costs(run.events, contract))


def costs_in_scope(cube: CostCube, year: int, codes: list[str], sites: list[str] | None) -> dict[str, int]:
    """One year's cost per subcontractor from :func:`yearly_costs`, counting only ``sites`` if given."""
    by_provider = cube.get(year, {})
    return {
        code: sum(p for site, p in by_provider.get(code, {}).items() if sites is None or site in sites)
        for code in codes
    }
