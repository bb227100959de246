"""One run of the stress test, year by year in plain Python: the reference the vectorised
simulation must match exactly when nothing is uncertain, and the per-run loop the benchmark
compares it with. Every expression is written in the same order as in :func:`simulate`, so the
floating-point results agree to the last bit.
"""

from __future__ import annotations

from carecontract.viability.simulate import Inputs


def project(inputs: Inputs, draws: dict[str, list[float]] | None = None) -> list[float]:
    """Surplus each year for one run; ``draws`` (per-year lists / scalars) default to central values."""
    central = {name: dist.central for name, dist in inputs.risks.items()}
    d = draws or {}
    years = len(inputs.years)

    def value(name: str, t: int) -> float:
        given = d.get(name)
        if given is None:
            return central[name]
        return given[t] if isinstance(given, list) else given

    demand = unit_cost = saving = 1.0
    out = []
    for t in range(years):
        growth = 0.0 if t == 0 else value("demand_growth", t)
        shock = d.get("shock", [0.0] * years)[t]
        demand = demand * (1.0 + growth + shock * value("demand_shock_size", t))
        inflation = 0.0 if t == 0 else value("cost_inflation", t)
        unit_cost = unit_cost * (1.0 + inflation)
        saving = saving * (1.0 - float(inputs.savings[t]) * value("savings_realised", t))
        care = value("baseline_cost_gbp", t) * demand * unit_cost * saving
        if inputs.scope_factor is not None:
            care = care * float(inputs.scope_factor[t])
        price = float(inputs.price[t]) * (demand if inputs.fund_demand_growth else 1.0)
        lost = float(inputs.at_risk[t]) * price * (1.0 - min(value("outcome_achievement", t) * inputs.cap, 1.0))
        income = price - lost
        vat = float(inputs.vat_rate[t]) * value("vat_exposed_share", t) * care if inputs.vat_irrecoverable else 0.0
        costs = care + value("management_cost_share", t) * income + vat
        costs = costs + (inputs.mobilisation if t == 0 else 0.0)
        out.append(income - costs)
    return out


def cumulative(surplus: list[float]) -> list[float]:
    total, out = 0.0, []
    for s in surplus:
        total = total + s
        out.append(total)
    return out
