"""Demand and cost growth from the recorded trend, with its uncertainty, instead of the terms' guess.

The seeds' Staffordshire contract assumed a 10% rise in demand over ten years from base data
four years old. Where a store holds several whole contract years, the trend is measured:

- **demand growth**: referrals per contract year (every route), fitted log-linearly on the
  year; the growth is exp(slope) − 1 and its uncertainty the slope's standard error;
- **cost growth**: a Laspeyres unit-cost index over the subcontractors' costed events, each kind
  of event (its treatment modality, else its event type) weighted by its count in the first whole
  year, so a year with more surgery is not mistaken for inflation; fitted the same way.

At least three whole contract years are needed (two points fit any line exactly and leave no
uncertainty to report); with fewer, the terms' distributions stand and the output says why.
The fitted growth becomes a normal distribution (mean, standard error) for every year of the
contract, and :attr:`Inputs.sources` says that it came from data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from typing import Any

import ibis
from ibis import _
from scipy.stats import t as student_t

from carecontract.run import Run, StoreLike
from carecontract.terms.model import Contract, Distribution
from carecontract.terms.years import contract_year
from carecontract.viability.simulate import Inputs

MIN_YEARS = 3


@dataclass
class Fit:
    """A log-linear growth fit: yearly growth, its standard error, and the points it came from."""

    growth: float
    sd: float
    points: dict[int, float]

    def distribution(self) -> Distribution:
        if self.sd > 0:
            return Distribution(dist="normal", mean=self.growth, sd=self.sd)
        return Distribution(dist="fixed", value=self.growth)


@dataclass
class Trend:
    """What the store says about growth, and why a figure was not taken from it."""

    years: list[int]
    demand: Fit | None = None
    cost: Fit | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        def fit(f: Fit | None) -> dict[str, Any] | None:
            return None if f is None else {"growth": f.growth, "sd": f.sd, "points": f.points}

        return {"years": self.years, "demand": fit(self.demand), "cost": fit(self.cost), "notes": self.notes}


def log_linear(points: dict[int, float]) -> Fit:
    """Ordinary least squares of log(value) on the year: growth exp(b) − 1 and its uncertainty.

    The standard error is se(b) × exp(b) (delta method), widened so that a normal distribution
    has the 95% interval of Student's t with n − 2 degrees of freedom: with three years (one
    degree of freedom) the slope is barely known, and a normal with the bare standard error would
    pretend otherwise."""
    xs = sorted(points)
    ys = [math.log(points[x]) for x in xs]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    residual = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))
    se = math.sqrt(residual / (n - 2) / sxx) if n > 2 else 0.0
    widen = float(student_t.ppf(0.975, n - 2) / student_t.ppf(0.975, math.inf)) if n > 2 else 1.0
    return Fit(math.exp(b) - 1, se * math.exp(b) * widen, points)


def whole_years(run: Run, contract: Contract) -> list[int]:
    """Contract years (by the year they start) lying wholly inside the store's recorded events."""
    first, last = run.event_range()
    if first is None:
        return []
    out = []
    start = contract.term.start
    for year in range(first.year - 1, last.year + 1):
        begin = start.replace(year=year)
        end = start.replace(year=year + 1)
        if begin >= first and end <= last + _one_day():
            out.append(year)
    return out


def _one_day():
    from datetime import timedelta

    return timedelta(days=1)


def measure(store: Run | StoreLike, contract: Contract) -> Trend:
    """The recorded trend in demand and unit cost for ``contract``'s subcontractors (see module docstring)."""
    run = Run.of(store)
    years = whole_years(run, contract)
    trend = Trend(years)
    if len(years) < MIN_YEARS:
        trend.notes.append(
            f"the store holds {len(years)} whole contract year(s); a trend with its uncertainty needs "
            f"{MIN_YEARS}: demand and cost growth stay as the terms assume"
        )
        return trend
    ev = run.events
    start = contract.term.start
    year = contract_year(ev.event_date, start.month, start.day)
    referrals = ev.filter(ev.event_type == "referral").mutate(year=year).group_by("year").aggregate(n=_.count())
    counts = {int(r["year"]): float(r["n"]) for r in referrals.to_pyarrow().to_pylist()}
    codes = [s.code for s in contract.subcontractors]
    costed = ev.filter(ev.cost_gbp.notnull(), ev.provider_code.isin(codes))
    cube = (
        costed.mutate(
            year=contract_year(costed.event_date, start.month, start.day),
            kind=ibis.coalesce(costed.modality.cast("string"), costed.event_type.cast("string")),
        )
        .group_by(["year", "kind"])
        .aggregate(n=_.count(), total=_.cost_gbp.sum().cast("float64"))
    )
    by_kind: dict[int, dict[str, tuple[float, float]]] = {}
    for r in cube.to_pyarrow().to_pylist():
        by_kind.setdefault(int(r["year"]), {})[r["kind"]] = (float(r["n"]), float(r["total"]))
    demand_points = {y: counts[y] for y in years if counts.get(y)}
    if len(demand_points) >= MIN_YEARS:
        trend.demand = log_linear(demand_points)
    else:
        trend.notes.append("too few years with referrals to fit demand growth")
    base = by_kind.get(years[0], {})
    weights = {k: n for k, (n, _total) in base.items() if n}
    index: dict[int, float] = {}
    for y in years:
        this = by_kind.get(y, {})
        shared = [k for k in weights if this.get(k, (0, 0))[0]]
        if not shared:
            continue
        num = sum(weights[k] * this[k][1] / this[k][0] for k in shared)
        den = sum(weights[k] * base[k][1] / base[k][0] for k in shared)
        index[y] = num / den
    if len(index) >= MIN_YEARS:
        trend.cost = log_linear(index)
    else:
        trend.notes.append("too few years of costed activity to fit cost growth")
    return trend


def apply(inputs: Inputs, trend: Trend) -> Inputs:
    """``inputs`` with demand and cost growth taken from ``trend`` where it has them, sources marked."""
    risks, sources = dict(inputs.risks), dict(inputs.sources or {})
    span = f"{trend.years[0]}–{trend.years[-1]}" if trend.years else ""
    for name, fit, what in (("demand_growth", trend.demand, "referrals"), ("cost_inflation", trend.cost, "unit cost")):
        if fit is not None:
            assumed = risks[name].central
            risks[name] = fit.distribution()
            sources[name] = (
                f"data (store: {what} trend {span}, {fit.growth:+.2%} a year ± {fit.sd:.2%}, {len(fit.points)} years; "
                f"the terms assumed {assumed:+.2%})"
            )
    return _replace(inputs, risks=risks, sources=sources)
