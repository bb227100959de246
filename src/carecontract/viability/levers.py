"""Break-even: for each lever, the value at which the chance of a deficit falls to the risk appetite.

The question before signing is not "how likely is a deficit?" but "what would make it unlikely
enough?". For each lever (:class:`~carecontract.viability.simulate.Levers`) the solver finds the
value at which the deficit probability equals the appetite (default 10%), all else as the terms
say, on one set of random draws (common random numbers): every evaluation sees the same runs, so
the response to the lever is a step function of it with no sampling noise between evaluations,
and the answer is stable to the seed up to the interval reported.

- Continuous levers (contingency, funded demand growth above a threshold, a risk-share
  corridor, a management-cost cap) are solved with Brent's method (``scipy.optimize.brentq``) on
  f(v) = P(deficit | v) − appetite − ½/runs: the half-run offset keeps f off zero, so the root is
  the jump where the probability crosses the appetite, found to the lever's tolerance and then
  stepped to the safe side.
- The term (or a break clause after *n* years) is a whole number: every length is evaluated.
- VAT treatment (an NHS body as prime recovers VAT; a non-NHS prime cannot) has two values: both
  are reported.

**Intervals.** The probability at the solution carries its Wilson 95% interval over the runs.
The lever's interval is the range of values whose deficit probability cannot be told from the
appetite at this number of runs: the solutions at appetite ± h, h = 1.96·√(a(1−a)/runs).
**Recommended** is the solution at appetite − 2h: the solver's own estimate and a fresh set of
runs (or the truth) each err by about √(a(1−a)/runs), so a value solved exactly at the
appetite comes out above it on new draws half the time; 2h keeps a fresh estimate below the
appetite with near certainty (the back-test, docs/backtest.md, checks this on other seeds).

Monotone responses (tests check them with Hypothesis): more contingency, more funded growth (a
lower threshold), a lower management cap, a shorter term never raise the chance of a deficit,
run by run. The corridor is the exception the tests also show: it shares under-spends as well as
over-spends, so a run whose early surpluses are shared away can end in deficit; the solver
therefore brackets from the protected end and reports where the probability first crosses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from dataclasses import replace as _replace
from typing import Any

import numpy as np
from scipy.optimize import brentq

from carecontract.measures.stats import wilson
from carecontract.viability.simulate import NO_LEVERS, Inputs, Levers, StressError, deficit_and_gap, simulate

APPETITE = 0.10
Z95 = 1.959963984540054


@dataclass(frozen=True)
class LeverSpec:
    """A continuous lever: its field in :class:`Levers`, range, tolerance and direction."""

    name: str
    field: str
    meaning: str
    unit: str
    low: float
    high: float
    xtol: float
    more_is_safer: bool  # True: raising the value lowers the deficit probability


CONTINUOUS = (
    LeverSpec(
        "contingency",
        "contingency",
        "a contingency reserve added to the price each year",
        "share of the price",
        0.0,
        1.0,
        1e-4,
        True,
    ),
    LeverSpec(
        "funded_growth_above",
        "funded_growth_above",
        "commissioners fund yearly demand growth above this rate",
        "growth per year",
        0.0,
        0.10,
        1e-5,
        False,
    ),
    LeverSpec(
        "risk_corridor",
        "corridor",
        "over- and under-spend beyond ±this share of the price shared with the commissioners",
        "share of the price",
        0.0,
        0.50,
        1e-4,
        False,
    ),
    LeverSpec(
        "management_cap",
        "management_cap",
        "management cost capped at this share of income",
        "share of income",
        0.0,
        1.0,
        1e-4,
        False,
    ),
)


@dataclass
class BreakEven:
    """One lever's answer: the value that meets the appetite (None if out of reach), with intervals."""

    lever: str
    meaning: str
    unit: str
    status: str  # solved | already within appetite | out of reach
    value: float | None
    value_low: float | None
    value_high: float | None
    probability: float  # deficit probability at the value (or at the lever's safest setting if out of reach)
    probability_low: float | None
    probability_high: float | None
    at_current_terms: float
    recommended: float | None = None  # the value with a margin for a fresh sample (see the module docstring)
    per_year_gbp: float | None = None  # the contingency in pounds a year (mean over the years)
    curve: list[dict[str, Any]] | None = None  # discrete levers: the probability at each value

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Evaluator:
    """The deficit probability under lever settings, on one fixed set of draws."""

    def __init__(self, inputs: Inputs, draws: dict[str, np.ndarray], base: Levers = NO_LEVERS) -> None:
        self.inputs, self.draws, self.base = inputs, draws, base
        self.runs = draws["demand_growth"].shape[0]
        self.calls = 0
        self.cache: dict[Any, dict[str, Any]] = {}  # the cost side, computed once per VAT / term setting

    def deficits(self, levers: Levers) -> int:
        self.calls += 1
        cumulative = simulate(self.inputs, self.draws, levers=levers, cache=self.cache)["cumulative"]
        deficit, _gap = deficit_and_gap(cumulative)
        return int(deficit.sum())

    def probability(self, **changes: Any) -> float:
        return self.deficits(_replace(self.base, **changes)) / self.runs


def _solve(prob: Callable[[float], float], spec: LeverSpec, target: float, runs: int) -> float | None:
    """The value of the lever where the probability crosses ``target`` (safe side), or None."""
    offset = 0.5 / runs
    f = lambda v: prob(v) - target - offset  # noqa: E731
    low, high = spec.low, spec.high
    safe = high if spec.more_is_safer else low
    risky = low if spec.more_is_safer else high
    if f(risky) <= 0:  # already at or below the target at the bracket's less protected end
        return float(risky)
    if spec.more_is_safer:
        while f(high) > 0 and high < 8.0:  # a price lever may need more than its first range
            low, high = high, high * 2
        if f(high) > 0:
            return None
    elif f(safe) > 0:
        return None
    root = brentq(f, low, high, xtol=spec.xtol)
    step = spec.xtol if spec.more_is_safer else -spec.xtol
    while f(root) > 0:  # brentq stops within xtol of the jump: move to its safe side
        root += step
    return float(root)


def solve_lever(evaluator: Evaluator, spec: LeverSpec, appetite: float = APPETITE) -> BreakEven:
    """One continuous lever's break-even (see the module's docstring)."""
    runs = evaluator.runs
    prob = lambda v: evaluator.probability(**{spec.field: v})  # noqa: E731
    current = evaluator.deficits(evaluator.base) / runs
    if spec.field == "contingency":  # the terms' own reserve is where the search starts
        c0 = evaluator.base.contingency
        spec = _replace(spec, low=c0, high=max(spec.high, 2 * c0))
    risky = spec.low if spec.more_is_safer else spec.high
    if prob(risky) <= appetite:
        value = risky
        status = "already within appetite"
    else:
        value = _solve(prob, spec, appetite, runs)
        status = "solved" if value is not None else "out of reach"
    if value is None:
        safest = spec.low if not spec.more_is_safer else spec.high
        p = prob(safest)
        return BreakEven(spec.name, spec.meaning, spec.unit, status, None, None, None, p, None, None, current)
    half = Z95 * math.sqrt(appetite * (1 - appetite) / runs)
    ends = []
    for target in (appetite + half, max(appetite - half, 0.5 / runs), max(appetite - 2 * half, 0.5 / runs)):
        # a target above the appetite needs less of the lever than the solution, one below needs more
        less = (target > appetite) == spec.more_is_safer
        bracket = _replace(spec, high=value) if less else _replace(spec, low=value)
        ends.append(_solve(prob, bracket, target, runs) if status == "solved" else value)
    recommended = ends.pop()
    deficits = round(prob(value) * runs)
    lo, hi = wilson(deficits, runs)
    known = [e for e in ends if e is not None]
    value_low, value_high = (min(known), max(known)) if known else (None, None)
    result = BreakEven(
        spec.name, spec.meaning, spec.unit, status, value, value_low, value_high, deficits / runs, lo, hi, current
    )
    result.recommended = recommended
    if spec.field == "contingency":
        result.per_year_gbp = float(value * evaluator.inputs.price.mean())
    return result


def vat_treatment(evaluator: Evaluator, appetite: float = APPETITE) -> BreakEven:
    """The deficit probability with an NHS body as prime (VAT recovered) and with a non-NHS one."""
    curve = [
        {"value": label, "probability": evaluator.probability(vat_recoverable=recoverable)}
        for label, recoverable in (("NHS body as prime (VAT recovered)", True), ("non-NHS prime", False))
    ]
    current = evaluator.deficits(evaluator.base) / evaluator.runs
    nhs = curve[0]["probability"]
    status = "already within appetite" if current <= appetite else ("solved" if nhs <= appetite else "out of reach")
    lo, hi = wilson(round(nhs * evaluator.runs), evaluator.runs)
    meaning = "VAT treatment: an NHS body as prime recovers VAT; a non-NHS prime cannot"
    value = 1.0 if status == "solved" else None
    return BreakEven(
        "vat_treatment", meaning, "NHS prime", status, value, None, None, nhs, lo, hi, current, curve=curve
    )


def term_length(evaluator: Evaluator, appetite: float = APPETITE) -> BreakEven:
    """The longest term (or break clause after n years) whose deficit probability meets the appetite."""
    years = len(evaluator.inputs.years)
    curve = [{"value": n, "probability": evaluator.probability(years=n)} for n in range(1, years + 1)]
    current = curve[-1]["probability"]
    meeting = [row["value"] for row in curve if row["probability"] <= appetite]
    meaning = "a shorter term, or a break clause after this many years"
    if not meeting or meeting[0] != 1:
        p = curve[0]["probability"]
        lo, hi = wilson(round(p * evaluator.runs), evaluator.runs)
        return BreakEven(
            "term_years", meaning, "years", "out of reach", None, None, None, p, lo, hi, current, curve=curve
        )
    n = max(v for v in meeting if all(r["probability"] <= appetite for r in curve[:v]))
    p = curve[n - 1]["probability"]
    lo, hi = wilson(round(p * evaluator.runs), evaluator.runs)
    status = "already within appetite" if n == years else "solved"
    return BreakEven("term_years", meaning, "years", status, float(n), None, None, p, lo, hi, current, curve=curve)


def break_even(
    inputs: Inputs,
    draws: dict[str, np.ndarray],
    appetite: float = APPETITE,
    base: Levers = NO_LEVERS,
    levers: list[str] | None = None,
    corridor: tuple[float, float] | None = (0.02, 0.5),
) -> list[BreakEven]:
    """Every lever's break-even at ``appetite``, on the same draws, from the terms' own levers ``base``.

    A corridor limits how big a loss gets, not whether there is one (the prime still bears its
    share), so on its own it rarely meets an appetite; ``corridor`` (width, commissioners' share)
    adds the package a commissioner would sign: the contingency needed with that corridor in place.
    """
    if not 0 < appetite < 1:
        raise StressError(f"the risk appetite must be between 0 and 1, got {appetite}")
    evaluator = Evaluator(inputs, draws, base)
    names = [s.name for s in CONTINUOUS] + ["vat_treatment", "term_years"]
    wanted = levers or names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise StressError(f"unknown lever {unknown[0]!r} (valid: {', '.join(names)})")
    out = []
    for spec in CONTINUOUS:
        if spec.name in wanted:
            if spec.field == "funded_growth_above" and inputs.fund_demand_growth:
                continue  # the terms already fund all demand growth
            out.append(solve_lever(evaluator, spec, appetite))
    if corridor is not None and "contingency" in wanted:
        width, share = corridor
        with_corridor = Evaluator(inputs, draws, _replace(base, corridor=width, commissioner_share=share))
        package = solve_lever(with_corridor, CONTINUOUS[0], appetite)
        package.lever = "contingency_with_corridor"
        package.meaning = (
            f"the contingency needed with a ±{width:.0%} corridor, commissioners taking {share:.0%} beyond it"
        )
        out.append(package)
    if "vat_treatment" in wanted:
        out.append(vat_treatment(evaluator, appetite))
    if "term_years" in wanted:
        out.append(term_length(evaluator, appetite))
    return out
