"""Disclosure control for anything published: what the public may see, built to hold under attack.

The rules, from the published guidance cited in docs/transparency.md (OpenSAFELY's output-checking
rules; the ONS/GSS disclosure-control guidance for tables; sdcTable's and ACRO's frequency rule):

1. **Primary**: every count of 7 or fewer is suppressed (OpenSAFELY: "redact any outputs based on
   counts <= 7"); zero too, as sdcTable's ``protectZeros`` does, so an empty cell is not told apart.
2. **Rounding**: every published count is rounded to the nearest 5 (halves up), after suppression.
3. **Secondary**: a table is published with its margins, and every margin is the sum of the cells
   below it (``total = a + b + ...``). In each such relation the suppressed members must never be
   just one (it would be the total less the shown ones), and hidden cells under a shown total must
   add up to at least 8 (their sum is what differencing reveals). The smallest shown member is
   suppressed in turn until every relation holds; relations are revisited until nothing changes.
4. **Linked tables**: every breakdown the public can ask for is protected *together* with every
   other one (:class:`PublicTables`): ``by=provider`` is the margin of ``by=provider&by=tumour_site``,
   so a cell hidden in one is never left recoverable from the other.
5. **Published periods only** (:func:`published_periods`): contract years, or the quarters or months
   the terms' ``publication.period`` names — never an arbitrary window, so no two public answers
   differ by a few days of data.
6. **Derived figures follow their counts**: a rate and its interval are computed from the rounded,
   suppressed counts (never the exact ones), and only when the count and its complement (those
   who missed the standard) are both shown; money is suppressed with its count, and otherwise shown
   at the published count (:func:`public_money`); percentages in the quality report likewise.
"""

from __future__ import annotations

import calendar
import itertools
import math
from collections.abc import Hashable, Iterable
from datetime import date, timedelta
from typing import Any

from carecontract.errors import UserError
from carecontract.measures import stats
from carecontract.measures.definitions import HIGHER_IS_BETTER
from carecontract.terms.model import Contract


class PublicPeriodError(UserError, ValueError):
    """A public figure asked for a window that is not a published period."""


THRESHOLD = 8
ROUND_TO = 5
MAX_PUBLIC_BREAKDOWNS = 2  # the public sees tables of at most two breakdowns (and their margins)


def round5(value: int) -> int:
    return int(ROUND_TO * math.floor(value / ROUND_TO + 0.5))


def public_count(value: int | None) -> int | None:
    """A single count with no total beside it: suppressed below the threshold, else rounded."""
    return None if value is None or value < THRESHOLD else round5(value)


# -- secondary suppression over any set of additive relations ----------------------------------


def protect(values: dict[Hashable, int], relations: Iterable[tuple[Hashable, list[Hashable]]]) -> set[Hashable]:
    """The cells to suppress: primary (below the threshold) and secondary, so that in every relation
    ``total = sum(parts)`` either nothing is hidden, or at least two members are, and hidden parts under
    a shown total add up to at least the threshold."""
    relations = [(total, parts) for total, parts in relations if parts]
    suppressed = {key for key, value in values.items() if value < THRESHOLD}
    changed = True
    while changed:
        changed = False
        for total, parts in relations:
            while not _holds(values, suppressed, total, parts):
                shown = sorted((p for p in parts if p not in suppressed), key=lambda k: (values[k], str(k)))
                suppressed.add(shown[0] if shown else total)
                changed = True
    return suppressed


def _holds(values: dict[Hashable, int], suppressed: set[Hashable], total: Hashable, parts: list[Hashable]) -> bool:
    hidden = [p for p in parts if p in suppressed]
    if total in suppressed:
        return bool(hidden) or not parts  # a hidden total with every part shown is their sum
    if not hidden:
        return True
    return len(hidden) >= 2 and sum(values[p] for p in hidden) >= THRESHOLD


def protect_table(cells: dict[tuple[Hashable, Hashable], int]) -> dict[str, Any]:
    """Suppress and round a two-way table of counts published with its row and column totals.

    Returns ``{"cells": {(row, col): published or None}, "rows": {row: total or None},
    "columns": {col: total or None}, "total": grand total or None}``. Row totals and column totals
    are protected against the grand total too.
    """
    rows = sorted({r for r, _ in cells}, key=str)
    cols = sorted({c for _, c in cells}, key=str)
    values: dict[Hashable, int] = {("cell", k): v for k, v in cells.items()}
    for r in rows:
        values["row", r] = sum(v for (rr, _), v in cells.items() if rr == r)
    for c in cols:
        values["col", c] = sum(v for (_, cc), v in cells.items() if cc == c)
    values["total"] = sum(cells.values())
    relations = [(("row", r), [("cell", (r, c)) for c in cols if (r, c) in cells]) for r in rows]
    relations += [(("col", c), [("cell", (r, c)) for r in rows if (r, c) in cells]) for c in cols]
    relations += [("total", [("row", r) for r in rows]), ("total", [("col", c) for c in cols])]
    hidden = protect(values, relations)

    def shown(key: Hashable) -> int | None:
        return None if key in hidden else round5(values[key])

    return {
        "cells": {k: shown(("cell", k)) for k in cells},
        "rows": {r: shown(("row", r)) for r in rows},
        "columns": {c: shown(("col", c)) for c in cols},
        "total": shown("total"),
    }


def protect_line(values: dict[Hashable, int]) -> dict[str, Any]:
    """A one-way table (one line and its total)."""
    keys = list(values)
    hidden = protect(
        {("cell", k): v for k, v in values.items()} | {"total": sum(values.values())},
        [("total", [("cell", k) for k in keys])],
    )
    cells = {k: None if ("cell", k) in hidden else round5(v) for k, v in values.items()}
    return {"cells": cells, "total": None if "total" in hidden else round5(sum(values.values()))}


# -- derived figures -----------------------------------------------------------------------------


def public_rate(numerator: int | None, denominator: int | None) -> bool:
    """May a rate built from these counts be published? (Both the count and its complement shown.)"""
    if numerator is None or denominator is None:
        return False
    return numerator >= THRESHOLD and denominator - numerator >= THRESHOLD


def public_share(count: int | None, total: int | None) -> float | None:
    """A percentage of whole rows, from the rounded counts; None if the count or its complement is small."""
    if count is None or total is None or not public_rate(count, total):
        return None
    return round(round5(count) / round5(total), 3)


def public_money(amount: float | None, count: int | None, shown_count: int | None) -> float | None:
    """Money that belongs to a count: suppressed with it; else the amount per item times the
    *published* count, to the nearest £100, so that dividing it by a known unit price gives back the
    rounded count and nothing finer."""
    if amount is None or shown_count is None or not count:
        return None
    return float(round(amount / count * shown_count, -2))


# -- published periods ---------------------------------------------------------------------------


def published_periods(contract: Contract) -> list[tuple[date, date]]:
    """The periods public figures are given for: the terms' ``publication.period`` (contract years by
    default, or quarters or months) over the contract's term, as inclusive (first, last) days.

    Only one granularity is published, and its periods do not overlap, so no two public answers can
    be subtracted to isolate a few days of data (time-window differencing)."""
    kind = contract.publication.period
    out: list[tuple[date, date]] = []
    term = contract.term
    for index in range(term.years):
        year_start = term.year_start(index)
        if kind == "contract_year":
            out.append((year_start, term.year_end(index)))
            continue
        step = 3 if kind == "quarter" else 1
        starts = [_add_months(year_start, m) for m in range(0, 12, step)]
        ends = [*starts[1:], term.year_start(index + 1)]
        out += [(s, e - timedelta(days=1)) for s, e in zip(starts, ends, strict=True)]
    return out


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def default_period(contract: Contract, first: date | None, last: date | None) -> tuple[date, date] | None:
    """The published period shown when none is asked for: the latest that ended by the store's last
    event, else the latest that holds any event; None if no published period holds any."""
    if first is None or last is None:
        return None
    holding = [p for p in published_periods(contract) if p[0] <= last and p[1] >= first]
    ended = [p for p in holding if p[1] <= last]
    return (ended or holding or [None])[-1]


# -- linked measure tables -----------------------------------------------------------------------


class PublicTables:
    """Every measure table the public may ask for over one period, protected together.

    Built from measure rows broken down by *every* public dimension at once (``dims``); the public
    tables are that cube's margins over at most :data:`MAX_PUBLIC_BREAKDOWNS` dimensions. For a
    proportion each cell is three counts — numerator ``n``, complement ``m`` (cases that missed),
    denominator ``d = n + m`` — and every margin is the sum of the cells beneath it, so one call to
    :func:`protect` over all of them leaves no suppressed count recoverable by differencing any two
    answers. Cells no case fell in are zeros, and suppressed like any small count.
    """

    def __init__(self, rows: list[dict[str, Any]], dims: Iterable[str], max_dims: int = MAX_PUBLIC_BREAKDOWNS) -> None:
        self.dims = tuple(dims)
        self.tables = [
            s for k in range(min(max_dims, len(self.dims)) + 1) for s in itertools.combinations(self.dims, k)
        ]
        self.first: dict[str, dict[str, Any]] = {}
        by_measure: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_measure.setdefault(row["measure"], []).append(row)
            self.first.setdefault(row["measure"], row)
        # levels from the measures' own rows: the equity gap's rows leave out the quintile
        counted = [r for r in rows if r["measure"] != "equity_gap"]
        self.levels = {d: sorted({r.get(d) for r in counted}, key=str) for d in self.dims}
        self.cells: dict[str, dict[tuple, int]] = {}
        self.sums: dict[str, dict[tuple, float]] = {}
        self.hidden: dict[str, set[tuple]] = {}
        for measure, group in by_measure.items():
            if measure != "equity_gap":
                self._protect(measure, group)

    def _keys(self, table: tuple[str, ...]) -> list[tuple]:
        return list(itertools.product(*[self.levels[d] for d in table]))

    def _protect(self, measure: str, group: list[dict[str, Any]]) -> None:
        proportion = all(isinstance(r.get("numerator"), int) for r in group)
        values: dict[tuple, int] = {}
        sums: dict[tuple, float] = {}
        for table in self.tables:
            for key in self._keys(table):
                for part in ("n", "m", "d"):
                    values[table, key, part] = 0
                sums[table, key] = 0.0
        for r in group:
            d, n = int(r["denominator"] or 0), r.get("numerator") or 0
            for table in self.tables:
                key = tuple(r.get(x) for x in table)
                values[table, key, "d"] += d
                if proportion:
                    values[table, key, "n"] += int(n)
                    values[table, key, "m"] += d - int(n)
                else:
                    sums[table, key] += float(n)
        if not proportion:  # a mean: only the count of returns is a count
            values = {k: v for k, v in values.items() if k[2] == "d"}
        relations: list[tuple[Hashable, list[Hashable]]] = []
        parts = ("n", "m", "d") if proportion else ("d",)
        for table in self.tables:
            for key in self._keys(table):
                if proportion:
                    relations.append(((table, key, "d"), [(table, key, "n"), (table, key, "m")]))
                for extra in self.dims:
                    finer = tuple(d for d in self.dims if d in table or d == extra)
                    if extra in table or finer not in self.tables:
                        continue
                    for part in parts:
                        below = [
                            (finer, tuple(key[table.index(d)] if d in table else v for d in finer), part)
                            for v in self.levels[extra]
                        ]
                        relations.append(((table, key, part), below))
        self.cells[measure], self.sums[measure] = values, sums
        self.hidden[measure] = protect(values, relations)

    def _shown(self, measure: str, table: tuple[str, ...], key: tuple, part: str) -> int | None:
        full = (table, key, part)
        if full not in self.cells[measure] or full in self.hidden[measure]:
            return None
        return round5(self.cells[measure][full])

    def rows(self, by: Iterable[str] = ()) -> list[dict[str, Any]]:
        """The public rows for one breakdown (at most :data:`MAX_PUBLIC_BREAKDOWNS` of ``dims``)."""
        wanted = set(by)
        table = tuple(d for d in self.dims if d in wanted)
        if len(table) != len(wanted) or table not in self.tables:
            raise ValueError(f"no public table by {sorted(wanted)}")
        out = []
        for measure, first in self.first.items():
            if measure == "equity_gap":
                out += self._equity(first, table)
                continue
            for key in self._keys(table):
                out.append(self._row(measure, first, table, key))
        return out

    def _row(self, measure: str, first: dict[str, Any], table: tuple[str, ...], key: tuple) -> dict[str, Any]:
        target = first.get("target")
        row: dict[str, Any] = {"measure": measure, **dict(zip(table, key, strict=True)), "target": target}
        den = self._shown(measure, table, key, "d")
        proportion = (table, key, "n") in self.cells[measure]
        rate = low = high = None
        if proportion:
            num, missed = self._shown(measure, table, key, "n"), self._shown(measure, table, key, "m")
            row["numerator"] = num
            if num is not None and den is not None and missed is not None and den:
                rate, (low, high) = num / den, stats.wilson(num, den)  # from the published counts
        else:
            row["numerator"] = None
            exact = self.cells[measure][table, key, "d"]
            if den is not None and exact:
                rate = self.sums[measure][table, key] / exact  # a mean of 8 or more returns reveals no one
        row["denominator"] = den
        row |= {
            "rate": None if rate is None else round(rate, 3),
            "ci_low": None if low is None else round(low, 3),
            "ci_high": None if high is None else round(high, 3),
        }
        row["met"] = _met(measure, rate, target)
        row["suppressed"] = rate is None
        return row

    def _equity(self, first: dict[str, Any], table: tuple[str, ...]) -> list[dict[str, Any]]:
        """The equity gap from the base measure's published counts by deprivation quintile."""
        base = first.get("base_measure")
        keys = tuple(d for d in table if d != "imd_quintile")
        inner = tuple(d for d in self.dims if d in keys or d == "imd_quintile")
        out = []
        for key in self._keys(keys):
            row: dict[str, Any] = {"measure": "equity_gap", **dict(zip(keys, key, strict=True))}
            row |= {"target": first.get("target"), "numerator": None, "base_measure": base}
            counts = []
            if base in self.cells and inner in self.tables and "imd_quintile" in self.dims:
                for quintile in (5, 1):
                    cell = tuple(quintile if d == "imd_quintile" else key[keys.index(d)] for d in inner)
                    counts.append([self._shown(base, inner, cell, p) for p in ("n", "m", "d")])
            safe = len(counts) == 2 and all(v is not None for c in counts for v in c) and all(c[2] for c in counts)
            rate = low = high = None
            if safe:
                (n5, _, d5), (n1, _, d1) = counts
                rate, (low, high) = n5 / d5 - n1 / d1, stats.newcombe(n5, d5, n1, d1)
            row["denominator"] = counts[0][2] + counts[1][2] if safe else None
            row |= {
                "rate": None if rate is None else round(rate, 3),
                "ci_low": None if low is None else round(low, 3),
                "ci_high": None if high is None else round(high, 3),
            }
            row["met"] = None if rate is None or row["target"] is None else rate <= row["target"]
            row["suppressed"] = rate is None
            out.append(row)
        return out


def _met(measure: str, rate: float | None, target: float | None) -> bool | None:
    if rate is None or target is None:
        return None
    return rate >= target if HIGHER_IS_BETTER.get(measure, True) else rate <= target


def public_measures(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """Measure rows fit to publish, protected as one table by ``keys`` with all its margins (the
    CLI's ``--public``; the service and report use :class:`PublicTables` over every breakdown)."""
    return PublicTables(rows, keys, max_dims=len(keys)).rows(keys)


# -- money and the quality report ----------------------------------------------------------------


def public_accountability(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The commissioner × subcontractor table: events protected as a two-way table with its margins;
    cost and payment suppressed with the events, else shown at the published count; no outcomes."""
    kept = protect_table({(r["commissioner"], r["subcontractor"]): int(r["events"]) for r in rows})["cells"]
    out = []
    for r in rows:
        shown = kept[r["commissioner"], r["subcontractor"]]
        public = {k: v for k, v in r.items() if k != "outcomes"}
        public["events"] = shown
        for money in ("cost_gbp", "payment_received_gbp"):
            public[money] = public_money(r[money], r["events"], shown)
        out.append(public)
    return out


def public_quality(report: dict[str, Any]) -> dict[str, Any]:
    """A data-quality report fit to publish: row counts suppressed and rounded; each column's
    completeness and validity from rounded counts, and only where those complete (valid) and those
    not are both at least the threshold; timeliness to the month; no breakdowns or reason counts."""
    rows = report["rows"]
    read = rows.get("read") or 0
    columns = []
    for c in report["columns"]:
        filled = None if c.get("completeness") is None else round(c["completeness"] * read)
        valid = None if c.get("invalid_rows") is None else read - c["invalid_rows"]
        columns.append(
            {"column": c["column"], "completeness": public_share(filled, read), "validity": public_share(valid, read)}
        )
    timeliness = {}
    for key, value in report["timeliness"].items():
        if key in ("latest_event", "earliest_event"):
            timeliness[key] = value[:7] if value else None  # the month, not one patient's day
        elif key.startswith("share_"):
            timeliness[key] = public_share(None if value is None else round(value * read), read)
        else:
            timeliness[key] = value
    return {"rows": {k: public_count(v) for k, v in rows.items()}, "columns": columns, "timeliness": timeliness}


# -- fair comparisons: case-mix adjusted ratios and SPC months -----------------------------------


def public_adjusted(tables: PublicTables, rows: list[dict[str, Any]], by: Iterable[str]) -> list[dict[str, Any]]:
    """``<measure>_oe`` rows fit to publish, from the linked public tables' counts.

    A ratio is shown only where its measure's row in the same public table is (observed and those
    who were not both shown, after secondary suppression over every linked breakdown) and at least
    :data:`THRESHOLD` are expected. It is then the *published* observed count over the expected
    one (to one decimal), with the exact Poisson interval of the published count, so ratio × expected
    gives back the rounded count and nothing finer; the funnel is drawn again from those figures.
    """
    from carecontract.measures import casemix, funnel

    keys = list(by)
    shown = {(r["measure"], *(r.get(k) for k in keys)): r for r in tables.rows(keys)}
    whole = {r["measure"]: r for r in tables.rows(())}
    out: list[dict[str, Any]] = []
    for r in rows:
        base = r["base_measure"]
        cell = shown.get((base, *(r.get(k) for k in keys)))
        expected = float(r.get("expected") or 0.0)
        row: dict[str, Any] = {"measure": r["measure"], "base_measure": base, **{k: r.get(k) for k in keys}}
        safe = cell is not None and not cell["suppressed"] and expected >= THRESHOLD
        if not safe:
            out.append(row | {"observed": None, "expected": None, "denominator": None, "ratio": None} | _hidden())
            continue
        o, e = int(cell["numerator"]), round(expected, 1)
        low, high = casemix.exact_poisson(o)
        overall = whole.get(base, {}).get("rate")
        out.append(
            row
            | {
                "observed": o,
                "expected": e,
                "denominator": cell["denominator"],
                "ratio": round(o / e, 3),
                "ci_low": round(low / e, 3),
                "ci_high": round(high / e, 3),
                "raw_rate": cell["rate"],
                "adjusted_rate": None if overall is None else round(o / e * overall, 3),
                "higher_is_better": r.get("higher_is_better"),
                "suppressed": False,
            }
        )
    for base in {r["base_measure"] for r in out}:
        plotted = [r for r in out if r["base_measure"] == base and not r["suppressed"]]
        if not plotted:
            continue
        units = [("/".join(str(r[k]) for k in keys), r["observed"], r["expected"]) for r in plotted]
        plot = funnel.funnel(units, kind="ratio")
        for r, p in zip(plotted, plot.points, strict=True):
            r["funnel"] = {
                "phi": round(plot.phi, 3),
                "tau2": round(plot.tau2, 5),
                "limits_95": [p.limits.low95, p.limits.high95],
                "limits_998": [p.limits.low998, p.limits.high998],
                "outlier": p.outlier,
            }
    return out


def _hidden() -> dict[str, Any]:
    return {"ci_low": None, "ci_high": None, "raw_rate": None, "adjusted_rate": None, "suppressed": True}


def public_months(
    points: list[dict[str, Any]], total: dict[str, Any] | None, proportion: bool = True
) -> list[dict[str, Any]]:
    """An SPC chart's monthly points fit to publish, within one published period.

    The months' counts add up to the period's, which the public tables publish (``total``, its row
    over no breakdown), so they are protected as one line with that total: a month of fewer than
    :data:`THRESHOLD` cases, or (for a rate, ``proportion``) of fewer than that many in the
    numerator or its complement, is suppressed, and a second month with it wherever the period's
    total would give it away by subtraction. A shown month's rate is computed from its rounded
    counts (an adjusted point: the rounded observed count over its expected count, times the
    period's published rate). If the period's own row is suppressed every month is.
    """
    values: dict[Hashable, int] = {}
    relations: list[tuple[Hashable, list[Hashable]]] = []
    parts = ("n", "m", "d") if proportion else ("d",)
    for p in points:
        d, n = int(p["denominator"]), round(float(p.get("numerator") or 0))
        values[p["month"], "d"] = d
        if proportion:
            values[p["month"], "n"], values[p["month"], "m"] = n, d - n
            relations.append(((p["month"], "d"), [(p["month"], "n"), (p["month"], "m")]))
    for part in parts:
        values["total", part] = sum(values[p["month"], part] for p in points)
        relations.append((("total", part), [(p["month"], part) for p in points]))
    hidden = protect(values, relations)
    # the period's total is published with the measures: if protecting the months would need it
    # hidden, or it is hidden there, no month is shown
    period_hidden = total is None or total.get("suppressed", True) or any(("total", p) in hidden for p in parts)
    out = []
    for p in points:
        month = p["month"]
        gone = period_hidden or any((month, part) in hidden for part in parts)
        row: dict[str, Any] = {"month": month, "suppressed": gone, "numerator": None, "denominator": None, "rate": None}
        if not gone:
            d = round5(values[month, "d"])
            row["denominator"] = d
            if proportion:
                n = round5(values[month, "n"])
                row["numerator"] = n
                if p.get("expected"):
                    row["rate"] = n / p["expected"] * total["rate"] if total.get("rate") is not None else None
                else:
                    row["rate"] = n / d if d else None
            else:
                row["rate"] = p.get("rate")  # a mean of 8 or more returns reveals no one
        out.append(row)
    return out
