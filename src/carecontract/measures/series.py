"""Monthly series of a measure: the points an SPC chart plots.

Why a module of its own: the XmR arithmetic (``spc.py``) is pure and engine-free; this turns the
store into its points with the measure's own definition (``definitions.py``), one grouped
aggregate by calendar month of the measure's period date, so it runs on DuckDB and Spark alike.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ibis import _

from carecontract.measures.compute import MeasureError, Sources, _keyed
from carecontract.measures.definitions import MEASURE_IDS, measures

#: The measures with a monthly series (the equity gap is a difference of two rates, not a series).
SERIES = tuple(m for m in MEASURE_IDS if m != "equity_gap")


def monthly(
    src: Sources,
    measure_id: str,
    start: date,
    end: date,
    provider: str | None = None,
    commissioner: str | None = None,
) -> list[dict[str, Any]]:
    """``{month, numerator, denominator, rate}`` for each calendar month in [start, end] with cases,
    for one provider's or one commissioner's cases if given."""
    defs = measures(src.censor)
    if measure_id not in SERIES:
        raise MeasureError(f"no monthly series for {measure_id!r} (valid: {', '.join(SERIES)})")
    measure = defs[measure_id]
    only = {k: v for k, v in (("provider", provider), ("commissioner", commissioner)) if v is not None}
    table = _keyed(measure, src.table(measure), tuple(only)).filter(_._in, _._period.between(start, end))
    for key, value in only.items():
        table = table.filter(table[key] == value)
    table = table.mutate(month=_._period.truncate("M"))
    value = table._value.cast("float64")
    rows = table.group_by("month").aggregate(denominator=table.count(), numerator=value.sum()).to_pyarrow().to_pylist()
    out = []
    for r in sorted(rows, key=lambda r: r["month"]):
        month = r["month"].date() if hasattr(r["month"], "date") else r["month"]
        n, d = r["numerator"] or 0.0, r["denominator"]
        out.append({"month": month, "numerator": n, "denominator": d, "rate": n / d if d else None})
    return out
