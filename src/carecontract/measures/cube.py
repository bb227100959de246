"""Every measure's counts by day and by every breakdown, made once, so any period and breakdown is a filter and a sum.

Why: a service asked for the measures of many periods and breakdowns of one store version would
otherwise run every measure's grouped aggregate over the pathways again for each request (seconds
each at 150k events). Each measure is additive over its cases: a case counts in the period holding
its period date (:attr:`~carecontract.measures.definitions.Measure.period_date`), and the
numerator, denominator and, for a mean, the sum of squares are sums. So one table per measure of
those sums by (period date, commissioner, provider, tumour site, IMD quintile) answers every
question :func:`~carecontract.measures.compute.compute_measures` answers — any [start, end], any
breakdowns — by keeping the days in the period and summing by the breakdowns asked for. The rows are
then finished by the same code as the engine's (:func:`~carecontract.measures.compute.finish`:
intervals, targets, equity gap, funnel limits), so the figures are the same, not a second copy.

The table is built once per store version (:meth:`MeasureCube.build`, one grouped aggregate per
measure on the Run's engine) and held as Arrow; answering reads Arrow only (no engine connection),
so requests answer in parallel. Its size is at most one row per measure, day and breakdown cell
that holds a case, and never more rows than the cases counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from carecontract.measures.compute import BREAKDOWNS, Sources, _keyed, check_request, finish
from carecontract.measures.definitions import Measure, measures

DAY = "_period"


@dataclass(frozen=True)
class MeasureCube:
    """Each measure's sums by day and breakdown cell (``tables``, Arrow), and the store's censor date."""

    censor: date | None
    tables: Mapping[str, pa.Table]

    @classmethod
    def build(cls, src: Sources) -> MeasureCube:
        """The counts of every measure over ``src`` (built with detail: providers and tumour sites)."""
        if not src.detail:
            raise ValueError("a measure cube needs sources built with detail (providers and tumour sites)")
        tables = {}
        for measure in measures(src.censor).values():
            if measure.kind == "gap":  # the equity gap is derived from its base measure's counts
                continue
            table = _keyed(measure, src.table(measure), BREAKDOWNS)
            table = table.filter(table._in, table._period.notnull())
            metrics: dict[str, Any] = {"denominator": table.count()}
            if measure.kind == "mean":
                value = table._value.cast("float64")
                metrics |= {"numerator": value.sum(), "sum_sq": (value * value).sum()}
            else:
                metrics["numerator"] = table._value.cast("int64").sum()
            tables[measure.id] = table.group_by([DAY, *BREAKDOWNS]).aggregate(**metrics).to_pyarrow()
        return cls(src.censor, tables)

    @property
    def nbytes(self) -> int:
        """Bytes the counts hold (what a cache of cubes weighs)."""
        return sum(t.nbytes for t in self.tables.values())

    def counts(self, measure: Measure, start: date, end: date, by: tuple[str, ...]) -> list[dict[str, Any]]:
        """The rows :func:`~carecontract.measures.compute.aggregate` gives, from the cube: days in
        [start, end] summed by ``by`` (one row even for no cases when ``by`` is empty, as SQL does)."""
        table = self.tables[measure.id]
        day = table[DAY]
        table = table.filter(
            pc.and_(pc.greater_equal(day, pa.scalar(start, day.type)), pc.less_equal(day, pa.scalar(end, day.type)))
        )
        sums = [c for c in ("denominator", "numerator", "sum_sq") if c in table.column_names]
        if not by:
            row = {c: pc.sum(table[c]).as_py() for c in sums}  # None for no cases, as SQL's sum
            row["denominator"] = row["denominator"] or 0  # SQL's count(*)
            return [row]
        grouped = table.group_by(list(by)).aggregate([(c, "sum") for c in sums])
        rows = [{c: r.pop(f"{c}_sum") for c in sums} | r for r in grouped.to_pylist()]
        return sorted(rows, key=lambda r: tuple(str(r[k]) for k in by))

    def measures(
        self,
        start: date,
        end: date,
        by: Iterable[str] = (),
        *,
        only: Iterable[str] | None = None,
        targets: Mapping[str, float] | None = None,
    ) -> list[dict[str, Any]]:
        """The same rows as :func:`~carecontract.measures.compute.compute_measures` for this store."""
        by, wanted = check_request(start, end, by, only)
        return finish(self.censor, self.counts, start, end, by, wanted, dict(targets or {}))
