"""Where the funding gap comes from: the expected gap attributed to its causes, exactly.

Each cause in :data:`~carecontract.viability.simulate.CAUSES` (demand growth, demand shocks,
cost inflation above the price uplift, unrealised savings, outcome payments not earned,
management cost, irrecoverable VAT, mobilisation) can be switched off on the *same* random
draws (common random numbers), so any difference between two switch settings is the causes'
doing, not sampling noise. What is left with every cause off is the **base**: the gap from the
price profile against the first-year cost alone (zero for a contract priced at cost).

The gap is not additive in its causes: demand growth and cost inflation multiply, and the gap
is the deepest cumulative shortfall, a maximum. So a cause's share depends on which others are
already on. Two attributions are offered, both adding up exactly to total − base:

- **Shapley** (the default): each cause gets its marginal effect averaged over every order of
  switching causes on (Shapley 1953; the order-free answer, symmetric in the causes and zero for
  a cause that changes nothing). With 8 causes that is 2⁸ = 256 switch settings, each evaluated
  on all runs; :class:`_Parts` precomputes what the settings share so that 100,000 runs × 10
  years take a few seconds.
- **sequential**: causes switched on one at a time in a stated order, each credited with what
  it added. Cheaper (9 settings) but order-dependent: the cause switched on later gets the
  interaction.

Figures are given in pence as integers: contributions are exact rationals of the evaluated
gaps (Shapley weights as fractions) and rounded by the largest-remainder method, so base +
contributions = total to the penny, not merely to floating-point accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations
from typing import Any, Literal

import numpy as np

from carecontract.viability.simulate import CAUSES, NO_LEVERS, Inputs, Levers, StressError

Method = Literal["shapley", "sequential"]
CHUNK = 8192  # runs per block: a block's arrays stay in cache across the 256 settings


class _Parts:
    """The pieces of :func:`~carecontract.viability.simulate.simulate` that the switch settings
    share, for one block of runs, so that each setting costs a few array operations.

    The expressions are those of ``simulate`` (tests hold the two equal setting by setting)."""

    def __init__(self, inputs: Inputs, draws: dict[str, np.ndarray], levers: Levers = NO_LEVERS) -> None:
        if levers.funded_growth_above is not None or levers.vat_recoverable is not None or levers.years is not None:
            raise StressError("the waterfall takes the terms' own levers only (contingency, corridor, cap)")
        t = draws["demand_growth"].shape[1]
        growth = draws["demand_growth"].copy()
        growth[:, 0] = 0.0
        jumps = draws["shock"] * draws["demand_shock_size"]
        zero = np.zeros_like(growth)
        # demand[growth on][shocks on]
        self.demand = {
            (g, s): np.cumprod(1.0 + (growth if g else zero) + (jumps if s else 0.0), axis=1)
            for g in (False, True)
            for s in (False, True)
        }
        inflation = draws["cost_inflation"].copy()
        inflation[:, 0] = 0.0
        tariff = inputs.tariff[:t] if inputs.tariff is not None else np.zeros(t)
        unit = {
            True: np.cumprod(1.0 + inflation, axis=1),
            False: np.cumprod(1.0 + np.broadcast_to(tariff[None, :], inflation.shape), axis=1),
        }
        saving = {
            True: np.cumprod(1.0 - inputs.savings[None, :] * draws["savings_realised"], axis=1),
            False: np.cumprod(1.0 - inputs.savings[None, :] * 1.0, axis=1),
        }
        self.cost_path = {(i, r): unit[i] * saving[r] for i in (False, True) for r in (False, True)}
        self.base = draws["baseline_cost_gbp"]
        self.scope = inputs.scope_factor[None, :t] if inputs.scope_factor is not None else None
        self.fund = inputs.fund_demand_growth
        self.price = (inputs.price * (1.0 + levers.contingency) if levers.contingency else inputs.price)[None, :]
        self.corridor, self.share = levers.corridor, levers.commissioner_share
        self.kept = 1.0 - inputs.at_risk[None, :] * (
            1.0 - np.minimum(draws["outcome_achievement"] * inputs.cap, 1.0)
        )  # income ÷ price when outcomes can be missed
        self.vat = (inputs.vat_rate[None, :] * draws["vat_exposed_share"]) if inputs.vat_irrecoverable else None
        self.management = draws["management_cost_share"]
        if levers.management_cap is not None:
            self.management = np.minimum(self.management, levers.management_cap)
        self.mobilisation = inputs.mobilisation

    def gap_sum(self, on: frozenset[str]) -> float:
        """Sum over this block's runs of the funding gap with exactly the causes ``on`` on."""
        demand = self.demand[("demand_growth" in on, "demand_shocks" in on)]
        care = self.base * demand * self.cost_path[("cost_inflation" in on, "unrealised_savings" in on)]
        if self.scope is not None:
            care = care * self.scope
        price = self.price * demand if self.fund else self.price * 1.0
        income = price * self.kept if "outcomes_not_earned" in on else price
        costs = care
        if self.vat is not None and "irrecoverable_vat" in on:
            costs = costs + self.vat * care
        if "management_cost" in on:
            costs = costs + self.management * income
        surplus = income - costs
        if "mobilisation" in on:
            surplus[:, 0] -= self.mobilisation
        if self.corridor is not None:
            band = self.corridor * price
            surplus = surplus + self.share * (np.maximum(0.0, -surplus - band) - np.maximum(0.0, surplus - band))
        worst = np.cumsum(surplus, axis=1).min(axis=1)
        return float(np.maximum(0.0, -worst).sum())


def expected_gaps(
    inputs: Inputs, draws: dict[str, np.ndarray], settings: list[frozenset[str]], levers: Levers = NO_LEVERS
) -> list[float]:
    """The expected funding gap (pounds) for each switch setting (the causes on), on the same draws."""
    runs = draws["demand_growth"].shape[0]
    totals = [0.0] * len(settings)
    for start in range(0, runs, CHUNK):
        parts = _Parts(inputs, {k: v[start : start + CHUNK] for k, v in draws.items()}, levers)
        for i, on in enumerate(settings):
            totals[i] += parts.gap_sum(on)
    return [total / runs for total in totals]


def shapley(values: dict[frozenset[str], float], causes: list[str]) -> dict[str, Fraction]:
    """Shapley value of each cause from the value of every subset (exact rationals of the floats)."""
    n = len(causes)
    weight = [Fraction(math.factorial(k) * math.factorial(n - k - 1), math.factorial(n)) for k in range(n)]
    exact = {s: Fraction(v) for s, v in values.items()}
    out: dict[str, Fraction] = {}
    for cause in causes:
        others = [c for c in causes if c != cause]
        total = Fraction(0)
        for k in range(n):
            for subset in combinations(others, k):
                s = frozenset(subset)
                total += weight[k] * (exact[s | {cause}] - exact[s])
        out[cause] = total
    return out


def largest_remainder(parts: dict[str, Fraction], total: int) -> dict[str, int]:
    """Integers, each the floor of its part or one more, adding up to ``total`` (= Σ parts, rounded)."""
    floors = {k: math.floor(v) for k, v in parts.items()}
    left = total - sum(floors.values())
    by_remainder = sorted(parts, key=lambda k: (-(parts[k] - floors[k]), k))
    for k in by_remainder[: max(0, left)]:
        floors[k] += 1
    for k in by_remainder[::-1][: max(0, -left)]:  # Σ parts rounded below Σ floors: take back the smallest
        floors[k] -= 1
    return floors


@dataclass
class Waterfall:
    """The expected funding gap split into a base and one contribution per cause, in pence."""

    method: Method
    runs: int
    seed: int
    base_pence: int
    total_pence: int
    contributions_pence: dict[str, int]
    order: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "runs": self.runs,
            "seed": self.seed,
            "base_gbp": self.base_pence / 100,
            "total_gbp": self.total_pence / 100,
            "contributions": [
                {"cause": c, "meaning_when_off": CAUSES[c], "gbp": self.contributions_pence[c] / 100}
                for c in self.order
            ],
        }


def waterfall(
    inputs: Inputs,
    draws: dict[str, np.ndarray],
    method: Method = "shapley",
    seed: int = 0,
    levers: Levers = NO_LEVERS,
) -> Waterfall:
    """The expected funding gap attributed to its causes (see the module's docstring), under the
    terms' own ``levers`` (contingency, corridor, management cap) in every setting."""
    causes = list(CAUSES)
    if method == "shapley":
        settings = [frozenset(s) for k in range(len(causes) + 1) for s in combinations(causes, k)]
        values = dict(zip(settings, expected_gaps(inputs, draws, settings, levers), strict=True))
        parts = {c: v * 100 for c, v in shapley(values, causes).items()}
    elif method == "sequential":
        settings = [frozenset(causes[:k]) for k in range(len(causes) + 1)]
        values = dict(zip(settings, expected_gaps(inputs, draws, settings, levers), strict=True))
        parts = {
            c: (Fraction(values[settings[k + 1]]) - Fraction(values[settings[k]])) * 100 for k, c in enumerate(causes)
        }
    else:
        raise StressError(f"unknown waterfall method {method!r} (valid: shapley, sequential)")
    base = round(Fraction(values[frozenset()]) * 100)
    total = round(Fraction(values[frozenset(causes)]) * 100)
    contributions = largest_remainder(parts, total - base)
    order = causes if method == "sequential" else sorted(causes, key=lambda c: -contributions[c])
    runs = draws["demand_growth"].shape[0]
    return Waterfall(method, runs, seed, base, total, contributions, order)
