"""Statistical process control, the NHS way: "Making Data Count" XmR charts.

Why: a monthly figure that falls below target is not by itself news; boards were reacting to
noise. NHS England's *Making Data Count* (2019; and "Making data count: strengthening your
decisions", 2021) asks for an XmR chart of each measure: the mean, process limits, and four rules
for special-cause variation, summarised as a variation icon and an assurance icon against the
target. This follows it as the NHS-R package NHSRplotthedots (``ptd_spc``, v0.2) implements it,
which its users check against NHS England's Excel tool:

- mean of the points; moving ranges ``|x_i − x_{i−1}|``; moving ranges above 3.267 × their mean
  are screened out and the mean moving range recomputed (``screen_outliers``, on by default);
- process limits ``mean ± 2.66 × mean moving range`` (2.66 = 3 / 1.128, d2 for n = 2);
- special cause: a point outside the limits; a run of 7 or more on one side of the mean; a trend of
  7 or more each higher (or lower) than the last; two of three points beyond 2 sigma (two thirds of
  the way to a limit) on the same side of the mean;
- variation icon from the latest point; assurance from where the target lies against the limits:
  beyond both (the process always or never meets it) or between them (hit and miss).

Limits are recalculated ("rebased") only at dates recorded as decisions in the decision log — never
automatically, so a bad run cannot be hidden by starting the limits again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise
from typing import Literal

Improvement = Literal["increase", "decrease"]

#: 3 / d2 with d2 = 1.128 for moving ranges of two points (NHSRplotthedots ``limit`` constant).
LIMIT = 2.66
#: Moving ranges above this many times their mean are screened out (NHSRplotthedots ``mr_limit``).
MR_SCREEN = 3.267
RUN = 7
TREND = 7


@dataclass
class SpcPoint:
    """One month: its value, the limits of its segment and the special-cause rules it breaks."""

    period: date
    value: float
    mean: float
    lpl: float
    upl: float
    outside_limits: bool = False
    run: bool = False
    trend: bool = False
    two_in_three: bool = False
    trend_direction: int = 0  # +1 part of a rising trend, -1 a falling one
    point_type: str = (
        "common_cause"  # common_cause | special_cause_improvement | special_cause_concern | special_cause_neither
    )

    @property
    def special_cause(self) -> bool:
        return self.outside_limits or self.run or self.trend or self.two_in_three


@dataclass
class SpcChart:
    """An XmR chart: the points, the variation and assurance icons, and the segments' starts."""

    points: list[SpcPoint] = field(default_factory=list)
    variation: str = "common_cause"
    assurance: str | None = None  # consistently_pass | consistently_fail | inconsistent | None (no target)
    target: float | None = None
    rebased_at: list[date] = field(default_factory=list)


def _limits(values: Sequence[float], screen: bool) -> tuple[float, float, float]:
    mean = sum(values) / len(values)
    ranges = [abs(b - a) for a, b in pairwise(values)]
    if not ranges:
        return mean, mean, mean
    amr = sum(ranges) / len(ranges)
    if screen:
        kept = [r for r in ranges if r <= MR_SCREEN * amr]
        amr = sum(kept) / len(kept) if kept else amr
    return mean, mean - LIMIT * amr, mean + LIMIT * amr


def _mark_runs(flags: list[bool], sides: list[int], length: int) -> None:
    """Set ``flags`` on every point of a stretch of ``length`` or more equal non-zero ``sides``."""
    start = 0
    for i in range(1, len(sides) + 1):
        if i == len(sides) or sides[i] != sides[start] or sides[i] == 0:
            if sides[start] != 0 and i - start >= length:
                for j in range(start, i):
                    flags[j] = True
            start = i


def _segment(points: list[SpcPoint], screen: bool) -> None:
    values = [p.value for p in points]
    mean, lpl, upl = _limits(values, screen)
    for p in points:
        p.mean, p.lpl, p.upl = mean, lpl, upl
        p.outside_limits = p.value > upl or p.value < lpl
    n = len(points)
    # a run: consecutive points on one side of the mean (a point on the mean breaks it)
    sides = [(p.value > mean) - (p.value < mean) for p in points]
    runs = [False] * n
    _mark_runs(runs, sides, RUN)
    # a trend: each point higher (or lower) than the one before; the first point of the trend counts
    steps = [0] + [(b.value > a.value) - (b.value < a.value) for a, b in pairwise(points)]
    trends = [0] * n  # the direction of the trend a point belongs to
    i = 1
    while i < n:
        j = i
        while j + 1 < n and steps[j + 1] == steps[i] and steps[i] != 0:
            j += 1
        if steps[i] != 0 and j - i + 2 >= TREND:  # points i-1 .. j
            for k in range(i - 1, j + 1):
                trends[k] = steps[i]
        i = j + 1
    # two of three beyond two sigma on the same side (sigma = (upl − mean) / 3)
    sigma = (upl - mean) / 3
    near = [1 if p.value > mean + 2 * sigma else -1 if p.value < mean - 2 * sigma else 0 for p in points]
    two = [False] * n
    for s in range(n - 2):
        for side in (1, -1):
            hits = [k for k in range(s, s + 3) if near[k] == side]
            if len(hits) >= 2:
                for k in hits:
                    two[k] = True
    for k, p in enumerate(points):
        p.run, p.trend, p.two_in_three = runs[k], trends[k] != 0, two[k]
        p.trend_direction = trends[k]


def _point_type(p: SpcPoint, improvement: Improvement | None) -> str:
    if not p.special_cause:
        return "common_cause"
    if improvement is None:
        return "special_cause_neither"
    # a trend alone is read by its direction; otherwise by the side of the mean the point is on
    only_trend = p.trend and not (p.outside_limits or p.run or p.two_in_three)
    high = p.trend_direction > 0 if only_trend else p.value > p.mean
    good = high if improvement == "increase" else not high
    return "special_cause_improvement" if good else "special_cause_concern"


def xmr(
    periods: Sequence[date],
    values: Sequence[float],
    target: float | None = None,
    improvement: Improvement | None = "increase",
    rebase_at: Sequence[date] = (),
    screen_outliers: bool = True,
) -> SpcChart:
    """The XmR chart of ``values`` (in period order), rebased at each date in ``rebase_at``.

    ``rebase_at`` must come from decisions recorded in the decision log; a rebase date starts a new
    segment at the first period on or after it.
    """
    pairs = sorted(zip(periods, values, strict=True))
    points = [SpcPoint(period=d, value=float(v), mean=0.0, lpl=0.0, upl=0.0) for d, v in pairs]
    chart = SpcChart(points=points, target=target)
    if not points:
        return chart
    cuts = sorted({d for d in rebase_at if points[0].period < d <= points[-1].period})
    starts = [0]
    for cut in cuts:
        first = next(i for i, p in enumerate(points) if p.period >= cut)
        if first > starts[-1]:
            starts.append(first)
            chart.rebased_at.append(points[first].period)
    for a, b in zip(starts, [*starts[1:], len(points)], strict=True):
        _segment(points[a:b], screen_outliers)
    for p in points:
        p.point_type = _point_type(p, improvement)
    last = points[-1]
    if last.point_type == "common_cause":
        chart.variation = "common_cause"
    else:
        side = "high" if last.value > last.mean else "low"
        kind = last.point_type.removeprefix("special_cause_")
        chart.variation = f"{kind}_{side}"
    chart.assurance = _assurance(last, target, improvement)
    return chart


def _assurance(last: SpcPoint, target: float | None, improvement: Improvement | None) -> str | None:
    if target is None or improvement is None:
        return None
    if last.lpl <= target <= last.upl:
        return "inconsistent"  # hit and miss: the target lies within the process limits
    meets = target < last.lpl if improvement == "increase" else target > last.upl
    return "consistently_pass" if meets else "consistently_fail"


def rebase_dates(records: Sequence[dict], measure: str) -> list[date]:
    """The dates at which a measure's chart may be rebased: decision-log records of kind
    ``variation`` whose text reads ``rebase MEASURE from YYYY-MM-DD`` (the date the change took
    effect). Nothing else rebases a chart."""
    out = []
    for record in records:
        if record.get("kind") != "variation":
            continue
        match = _REBASE.search(str(record.get("text", "")))
        if match and match.group(1) == measure:
            out.append(date.fromisoformat(match.group(2)))
    return sorted(out)


_REBASE = re.compile(r"\brebase\s+([a-z0-9_]+)\s+from\s+(\d{4}-\d{2}-\d{2})\b", re.IGNORECASE)
