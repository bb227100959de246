"""Small-number suppression for anything published.

Rules (the issue's, as NHS statistics apply them):

1. **Primary**: every count below 8 is suppressed (zero too: the rule is about counts, not people).
2. **Rounding**: every published count is rounded to the nearest 5 (halves up).
3. **Secondary**: in every line that has a published total (a row or column of a table with its
   margin), the suppressed cells must number at least two *and* add up to at least 8, else the
   total less the published cells would give a small count back. The smallest published cells are
   suppressed in turn until that holds; rows and columns are revisited until nothing changes. A
   total below 8 is itself suppressed.

Rates are published only when both their numerator and the rest of their denominator are at
least 8 (a rate of 96% of 50 would otherwise reveal that 2 people missed the standard).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

THRESHOLD = 8
ROUND_TO = 5


def round5(value: int) -> int:
    return int(ROUND_TO * math.floor(value / ROUND_TO + 0.5))


def public_count(value: int | None) -> int | None:
    """A single count with no total beside it: suppressed below the threshold, else rounded."""
    return None if value is None or value < THRESHOLD else round5(value)


def _protect_line(values: dict[Hashable, int], suppressed: set[Hashable]) -> bool:
    """Secondary suppression for one line; True if it suppressed anything more."""
    hidden = [k for k in values if k in suppressed]
    if not hidden:
        return False
    changed = False
    while True:
        hidden = [k for k in values if k in suppressed]
        if len(hidden) >= 2 and sum(values[k] for k in hidden) >= THRESHOLD:
            return changed
        shown = sorted((k for k in values if k not in suppressed), key=lambda k: (values[k], str(k)))
        if not shown:
            return changed  # everything in the line is hidden; its total is handled by the caller
        suppressed.add(shown[0])
        changed = True


def protect_table(cells: dict[tuple[Hashable, Hashable], int]) -> dict[str, Any]:
    """Suppress and round a two-way table of counts published with its row and column totals.

    Returns ``{"cells": {(row, col): published or None}, "rows": {row: total or None},
    "columns": {col: total or None}, "total": grand total or None}``.
    """
    suppressed = {key for key, value in cells.items() if value < THRESHOLD}
    rows = sorted({r for r, _ in cells}, key=str)
    cols = sorted({c for _, c in cells}, key=str)
    changed = True
    while changed:
        changed = False
        for r in rows:
            line = {(r, c): cells[r, c] for c in cols if (r, c) in cells}
            changed |= _protect_line(line, suppressed)
        for c in cols:
            line = {(r, c): cells[r, c] for r in rows if (r, c) in cells}
            changed |= _protect_line(line, suppressed)

    def total(value: int) -> int | None:
        return None if value < THRESHOLD else round5(value)

    return {
        "cells": {k: (None if k in suppressed else round5(v)) for k, v in cells.items()},
        "rows": {r: total(sum(v for (rr, _), v in cells.items() if rr == r)) for r in rows},
        "columns": {c: total(sum(v for (_, cc), v in cells.items() if cc == c)) for c in cols},
        "total": total(sum(cells.values())),
    }


def protect_line(values: dict[Hashable, int]) -> dict[str, Any]:
    """A one-way table (one line and its total)."""
    table = protect_table({("all", k): v for k, v in values.items()})
    return {"cells": {k: table["cells"]["all", k] for k in values}, "total": table["total"]}


def public_rate(numerator: int | None, denominator: int | None) -> bool:
    """May a rate built from these counts be published?"""
    if numerator is None or denominator is None:
        return False
    return numerator >= THRESHOLD and denominator - numerator >= THRESHOLD


def public_measures(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """Measure results fit to publish: counts suppressed and rounded per measure (each breakdown is a
    line whose total is the overall figure), rates and intervals only where safe; no funnel detail."""
    out: list[dict[str, Any]] = []
    by_measure: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_measure.setdefault(row["measure"], []).append(row)
    for measure, group in by_measure.items():
        proportion = all(isinstance(r.get("numerator"), int) for r in group)
        names = [tuple(r.get(k) for k in keys) for r in group]
        published = {}
        for field in ("numerator", "denominator"):
            if proportion or field == "denominator":
                published[field] = protect_line({n: int(r[field] or 0) for n, r in zip(names, group, strict=True)})
        for name, row in zip(names, group, strict=True):
            public = {"measure": measure, **{k: row.get(k) for k in keys}, "target": row.get("target")}
            den = published["denominator"]["cells"][name]
            public["denominator"] = den
            if proportion:
                num = published["numerator"]["cells"][name]
                safe = num is not None and den is not None and public_rate(row["numerator"], row["denominator"])
                public["numerator"] = num
            else:
                safe = den is not None  # a mean of at least 8 returns reveals no one
            for field in ("rate", "ci_low", "ci_high"):
                value = row.get(field)
                public[field] = round(value, 3) if safe and value is not None else None  # no exact counts back
            public["met"] = row.get("met") if safe else None
            public["suppressed"] = not safe
            out.append(public)
    return out


def public_quality(report: dict[str, Any]) -> dict[str, Any]:
    """A data-quality report fit to publish: its row counts suppressed and rounded, each column's
    completeness and validity (rates of whole columns), and timeliness; no breakdowns or reason
    counts, which are small numbers for small providers."""
    return {
        "rows": {k: public_count(v) for k, v in report["rows"].items()},
        "columns": [{k: c[k] for k in ("column", "completeness", "validity")} for c in report["columns"]],
        "timeliness": report["timeliness"],
    }
