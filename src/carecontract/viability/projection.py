"""One run of the stress test, year by year in plain Python: the reference the vectorised
simulation must match exactly when nothing is uncertain, and the per-run loop the benchmark
compares it with. Every expression is written in the same order as in :func:`simulate`, so the
floating-point results agree to the last bit.
"""

from __future__ import annotations

from carecontract.viability.simulate import NO_LEVERS, Inputs, Levers


def project(
    inputs: Inputs,
    draws: dict[str, list[float]] | None = None,
    off: frozenset[str] = frozenset(),
    levers: Levers = NO_LEVERS,
) -> list[float]:
    """Surplus each year for one run; ``draws`` (per-year lists / scalars) default to central values.

    ``off`` and ``levers`` as in :func:`~carecontract.viability.simulate.simulate` (contingency,
    funded growth above a threshold, corridor and management cap; not the VAT or term levers)."""
    central = {name: dist.central for name, dist in inputs.risks.items()}
    d = draws or {}
    years = len(inputs.years)

    def value(name: str, t: int) -> float:
        given = d.get(name)
        if given is None:
            return central[name]
        return given[t] if isinstance(given, list) else given

    demand = unit_cost = saving = funded = 1.0
    tariff = inputs.tariff if inputs.tariff is not None else [0.0] * years
    out = []
    for t in range(years):
        growth = 0.0 if t == 0 or "demand_growth" in off else value("demand_growth", t)
        shock = d.get("shock", [0.0] * years)[t]
        jump = 0.0 if "demand_shocks" in off else shock * value("demand_shock_size", t)
        step = 1.0 + growth + jump
        demand = demand * step
        inflation = 0.0 if t == 0 else value("cost_inflation", t)
        if "cost_inflation" in off:
            inflation = float(tariff[t])
        unit_cost = unit_cost * (1.0 + inflation)
        realised = 1.0 if "unrealised_savings" in off else value("savings_realised", t)
        saving = saving * (1.0 - float(inputs.savings[t]) * realised)
        care = value("baseline_cost_gbp", t) * demand * unit_cost * saving
        if inputs.scope_factor is not None:
            care = care * float(inputs.scope_factor[t])
        base_price = (
            float(inputs.price[t]) * (1.0 + levers.contingency) if levers.contingency else float(inputs.price[t])
        )
        if inputs.fund_demand_growth:
            price = base_price * demand
        elif levers.funded_growth_above is not None:
            funded = funded * (1.0 + max(0.0, step - 1.0 - levers.funded_growth_above))
            price = base_price * funded
        else:
            price = base_price * 1.0
        if "outcomes_not_earned" in off:
            income = price
        else:
            income = price - float(inputs.at_risk[t]) * price * (
                1.0 - min(value("outcome_achievement", t) * inputs.cap, 1.0)
            )
        irrecoverable = inputs.vat_irrecoverable and "irrecoverable_vat" not in off
        vat = float(inputs.vat_rate[t]) * value("vat_exposed_share", t) * care if irrecoverable else 0.0
        management = 0.0 if "management_cost" in off else value("management_cost_share", t)
        if levers.management_cap is not None:
            management = min(management, levers.management_cap)
        costs = care + management * income + vat
        if "mobilisation" not in off:
            costs = costs + (inputs.mobilisation if t == 0 else 0.0)
        surplus = income - costs
        if levers.corridor is not None:
            band = levers.corridor * price
            surplus = surplus + levers.commissioner_share * (max(0.0, -surplus - band) - max(0.0, surplus - band))
        out.append(surplus)
    return out


def cumulative(surplus: list[float]) -> list[float]:
    total, out = 0.0, []
    for s in surplus:
        total = total + s
        out.append(total)
    return out
