"""Monte Carlo stress test of a whole contract life, vectorised over runs with NumPy.

Every quantity is an array of shape (runs, years); there is no Python loop over runs. For each
run and contract year *t*:

    demand   D_t = Π (1 + growth_k + shock_k)        growth from year 2; shocks any year
    prices   P_t = value_t × tariff uplift (× D_t if the terms fund demand growth)
    care     K_t = baseline × D_t × Π (1 + cost_inflation_k) × Π (1 − savings_k × realised) × scope_t
    income   I_t = P_t − at_risk_t × P_t × (1 − achievement_t × cap)     (outcomes-stage years)
    costs    K_t + management_share × I_t + vat_rate × vat_exposed × K_t (if VAT is irrecoverable)
             + mobilisation (year 1)
    surplus  S_t = I_t − costs;  cumulative C_t = Σ S

A run is in deficit if its cumulative position ever goes below zero; its funding gap is the
deepest cumulative shortfall (the extra money that would have been needed), and the first
deficit year is the first year it goes below zero. The savings actually realised is one draw per
run (a property of the model of care); every other risk is drawn per run and year.

``scope_t`` is 1 unless a store supplies it: the recorded first-year cost of year *t*'s tumour
sites over that of year 1's, so a roll-out to all sites raises costs when it happens.

The fee stage is assumed to last its ``max_years`` (a passed gate could end it earlier, which the
stress test cannot know before signing).

Levers (:class:`Levers`, issue 19) change the price side: P_t × (1 + contingency), funded demand
growth above a threshold, a management-cost cap, and a corridor that shares each year's S_t
beyond ±width × P_t with the commissioners; the VAT treatment and a shorter term change the
inputs. Causes (:data:`CAUSES`) can be switched off on the same draws, for the waterfall.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import replace as _replace
from datetime import date
from typing import Any

import numpy as np

from carecontract.errors import UserError
from carecontract.payments.costs import costs_by_year, costs_in_scope
from carecontract.run import Run, StoreLike
from carecontract.terms.model import Contract, Distribution, OutcomesStage

RISKS = (
    "baseline_cost_gbp",
    "demand_growth",
    "demand_shock_size",
    "cost_inflation",
    "savings_realised",
    "outcome_achievement",
    "management_cost_share",
    "vat_exposed_share",
)
PER_RUN = ("baseline_cost_gbp", "savings_realised", "management_cost_share", "vat_exposed_share")

#: The causes of a funding gap the waterfall attributes it to (viability.causes), each with what
#: "switched off" means: the cause does not happen, on the same random draws.
CAUSES: dict[str, str] = {
    "demand_growth": "demand does not grow (no yearly growth)",
    "demand_shocks": "no jumps in demand",
    "cost_inflation": "unit costs grow only as fast as the price uplift (tariff inflation)",
    "unrealised_savings": "the assumed efficiency savings are realised in full",
    "outcomes_not_earned": "the whole at-risk share is earned",
    "management_cost": "no management cost",
    "irrecoverable_vat": "no irrecoverable VAT",
    "mobilisation": "no mobilisation cost",
}


@dataclass(frozen=True)
class Levers:
    """Terms a commissioner can change to make a contract safe to sign (viability.levers).

    ``contingency``: extra price each year as a share of the price (a reserve paid to the prime).
    ``funded_growth_above``: commissioners fund yearly demand growth above this rate (price ×
    Π(1 + max(0, growth − threshold))); None: as the terms say.
    ``corridor`` and ``commissioner_share``: each year, an over- or under-spend beyond ±corridor ×
    price is shared, the commissioners taking ``commissioner_share`` of it; None: no corridor.
    ``management_cap``: management cost at most this share of income; None: uncapped.
    ``vat_recoverable``: an NHS body as prime recovers VAT (True), a non-NHS one cannot (False);
    None: as the terms say.
    ``years``: a shorter term, or a break clause the prime may use after this many years.
    """

    contingency: float = 0.0
    funded_growth_above: float | None = None
    corridor: float | None = None
    commissioner_share: float = 0.5
    management_cap: float | None = None
    vat_recoverable: bool | None = None
    years: int | None = None


NO_LEVERS = Levers()


def terms_levers(contract: Contract) -> Levers:
    """The levers the terms already pull: contingency, risk corridor, management cap."""
    p = contract.payments
    corridor = p.risk_corridor
    return Levers(
        contingency=p.contingency_share,
        corridor=corridor.width if corridor else None,
        commissioner_share=corridor.commissioner_share if corridor else 0.5,
        management_cap=p.management_cap,
    )


class StressError(UserError, ValueError):
    """A stress test that cannot be run as asked (no runs, nothing to calibrate on)."""


class CalibrationError(StressError):
    """A store with nothing to calibrate the stress test on (no recorded costs for the subcontractors)."""


@dataclass
class Inputs:
    """Everything the simulation needs, resolved from the terms (and the store, if given)."""

    years: list[date]
    price: np.ndarray  # (T,) pounds, before any demand funding
    at_risk: np.ndarray  # (T,) share of the price at risk (0 in fee years)
    cap: float
    savings: np.ndarray  # (T,) assumed efficiency saving each year
    vat_rate: np.ndarray  # (T,)
    vat_irrecoverable: bool
    mobilisation: float
    fund_demand_growth: bool
    risks: dict[str, Distribution]
    shock_probability: float
    baseline_source: str
    scope_factor: np.ndarray | None = None  # (T,) care cost at year t's scope ÷ at year 1's (from a store)
    tariff: np.ndarray | None = (
        None  # (T,) the price uplift in year t (0 in year 1): cost inflation above it is a cause
    )
    sources: dict[str, str] | None = None  # where each risk's distribution came from (terms, parameter, data)


def calibrate_from_store(contract: Contract, store: Run | StoreLike) -> tuple[float, list[float] | None]:
    """The first-year cost (pounds) from the store's recorded in-scope costs in the first contract
    year with data, and, for a contract that rolls out by tumour site, each year's scope costed on
    that same year's data relative to the first year's scope. ``store`` is a Run or a store."""
    run = Run.of(store)
    cube = costs_by_year(run, contract)  # every year, subcontractor and site in one pass
    codes = [s.code for s in contract.subcontractors]
    years = contract.contract_years()
    for start in years:
        scope = contract.scope_at(start) if contract.scope else None
        base = sum(costs_in_scope(cube, start.year, codes, scope).values())
        if base:
            if not contract.scope:
                return base / 100, None
            # each year's scope costed on this first year's data
            scopes = [contract.scope_at(d) for d in years]
            return base / 100, [sum(costs_in_scope(cube, start.year, codes, scope).values()) / base for scope in scopes]
    raise CalibrationError(
        f"{run.store.root}: no recorded costs for {contract.name}'s subcontractors in any contract year"
    )


def _fixed(value: float) -> Distribution:
    return Distribution(dist="fixed", value=float(value))


def resolve_inputs(
    contract: Contract, baseline_cost: float | None = None, scope_factor: list[float] | None = None
) -> Inputs:
    years = contract.contract_years()
    params = [contract.parameters_at(d) for d in years]
    values = contract.value_per_year()
    # demand funding, if any, is applied to the simulated demand, so only the tariff uplift here
    price = [float(values[d.year] * contract.price_uplift(i, with_demand=False)) for i, d in enumerate(years)]
    fee = contract.fee_stage
    outcomes = next((s for s in contract.stages if isinstance(s, OutcomesStage)), None)
    fee_years = fee.max_years if fee else 0
    at_risk = np.array([outcomes.at_risk_share if (outcomes and i >= fee_years) else 0.0 for i in range(len(years))])
    r = contract.risks
    management = params[0].get("management_share") or 0.0
    vat = np.array([p.get("vat_rate") or 0.0 for p in params])
    risks = {
        "demand_growth": r.demand_growth or _fixed(params[0].get("demand_growth") or 0.0),
        "demand_shock_size": r.demand_shock_size,
        "cost_inflation": r.cost_inflation or _fixed(params[0].get("cost_inflation") or 0.0),
        "savings_realised": r.savings_realised,
        "outcome_achievement": r.outcome_achievement,
        "management_cost_share": r.management_cost_share or _fixed(management),
        "vat_exposed_share": r.vat_exposed_share,
    }
    irrecoverable = contract.payments.vat.get(contract.prime.code) == "irrecoverable"
    if r.baseline_cost_gbp is not None:
        risks["baseline_cost_gbp"], source = r.baseline_cost_gbp, "terms (risks.baseline_cost_gbp)"
    elif baseline_cost is not None:
        risks["baseline_cost_gbp"], source = _fixed(baseline_cost), "store (recorded in-scope cost, first year)"
    else:
        exposed = risks["vat_exposed_share"].central if irrecoverable else 0.0
        priced_at_cost = price[0] * (1 - risks["management_cost_share"].central) / (1 + vat[0] * exposed)
        risks["baseline_cost_gbp"], source = _fixed(priced_at_cost), "terms (priced at cost in year 1)"
    tariff = [0.0] + [float(p.get("tariff_inflation") or 0.0) for p in params[1:]]
    return Inputs(
        years=years,
        tariff=np.array(tariff),
        sources=_sources(contract, source),
        price=np.array(price),
        at_risk=at_risk,
        cap=contract.payments.outcome_payment.cap_share,
        savings=np.array([p.get("efficiency_savings") or 0.0 for p in params]),
        vat_rate=vat,
        vat_irrecoverable=irrecoverable,
        mobilisation=float(params[0].get("mobilisation_cost_gbp") or 0.0),
        fund_demand_growth=contract.payments.fund_demand_growth,
        risks=risks,
        shock_probability=r.demand_shock_probability,
        baseline_source=source,
        scope_factor=np.array(scope_factor) if scope_factor is not None else None,
    )


def _sources(contract: Contract, baseline: str) -> dict[str, str]:
    """Where each risk's distribution comes from: the terms' risks:, a dated parameter, or a default."""
    parameter = {"demand_growth": "demand_growth", "cost_inflation": "cost_inflation"}
    parameter["management_cost_share"] = "management_share"
    out = {"baseline_cost_gbp": baseline}
    for name in RISKS[1:]:
        if name in contract.risks.model_fields_set:
            out[name] = f"terms (risks.{name})"
        elif name in parameter:
            out[name] = f"terms (parameter {parameter[name]}, fixed)"
        else:
            out[name] = "default (no uncertainty)"
    return out


def sample(dist: Distribution, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Draws of ``dist``; a fixed or zero-variance distribution gives its central value exactly."""
    if not dist.uncertain:
        return np.full(shape, dist.central)
    if dist.dist == "normal":
        return dist.mean + dist.sd * rng.standard_normal(shape)  # type: ignore[operator]
    if dist.dist == "lognormal":
        sigma2 = np.log1p((dist.sd / dist.mean) ** 2)  # type: ignore[operator]
        return rng.lognormal(np.log(dist.mean) - sigma2 / 2, np.sqrt(sigma2), shape)  # type: ignore[arg-type]
    if dist.dist == "uniform":
        return rng.uniform(dist.low, dist.high, shape)  # type: ignore[arg-type]
    if dist.dist == "triangular":
        return rng.triangular(dist.low, dist.mean, dist.high, shape)  # type: ignore[arg-type]
    m, sd = dist.mean, dist.sd
    k = m * (1 - m) / (sd * sd) - 1  # type: ignore[operator]
    return rng.beta(m * k, (1 - m) * k, shape)  # type: ignore[operator]


def quantile(dist: Distribution, q: float, rng: np.random.Generator) -> float:
    """The ``q`` quantile of a distribution (by simulation for the shapes without a closed form)."""
    if not dist.uncertain:
        return dist.central
    return float(np.quantile(sample(dist, rng, (20_000,)), q))


def draw(inputs: Inputs, runs: int, seed: int) -> dict[str, np.ndarray]:
    """All random inputs, in a fixed order so that the same seed gives the same numbers."""
    rng = np.random.default_rng(seed)
    t = len(inputs.years)
    out = {}
    for name in RISKS:
        shape = (runs, 1) if name in PER_RUN else (runs, t)
        out[name] = sample(inputs.risks[name], rng, shape)
    out["shock"] = (rng.random((runs, t)) < inputs.shock_probability).astype(float)
    return out


def simulate(
    inputs: Inputs,
    draws: dict[str, np.ndarray],
    off: frozenset[str] = frozenset(),
    levers: Levers = NO_LEVERS,
    cache: dict[Any, dict[str, Any]] | None = None,
) -> dict[str, np.ndarray]:
    """Surplus and cumulative position, (runs, years), in pounds.

    ``off`` switches causes off (:data:`CAUSES`) on the same draws; ``levers`` changes the terms
    (:class:`Levers`). With neither, the expressions are exactly those of
    :func:`carecontract.viability.projection.project`, so the two agree to the last bit.
    ``cache`` (a dict the caller keeps) holds what the price-side levers do not change — demand,
    care cost, VAT — so a break-even search recomputes only the rest at each evaluation.
    """
    if levers.vat_recoverable is not None:
        inputs = _replace(inputs, vat_irrecoverable=not levers.vat_recoverable)
    if levers.years is not None:
        draws = {k: v[:, : levers.years] if v.shape[1] > 1 else v for k, v in draws.items()}
        inputs = _truncate(inputs, levers.years)
    key = (off, levers.vat_recoverable, levers.years)
    part = cache.get(key) if cache is not None else None
    if part is None:
        part = _cost_side(inputs, draws, off)
        if cache is not None:
            cache[key] = part
    t = part["care"].shape[1]
    base_price = inputs.price if not levers.contingency else inputs.price * (1.0 + levers.contingency)
    if inputs.fund_demand_growth:
        price = base_price[None, :] * part["demand"]
    elif levers.funded_growth_above is not None:
        price = base_price[None, :] * np.cumprod(
            1.0 + np.maximum(0.0, part["step"] - 1.0 - levers.funded_growth_above), axis=1
        )
    else:
        price = base_price[None, :] * 1.0
    if "outcomes_not_earned" in off:
        income = price
    else:
        lost = inputs.at_risk[None, :] * price * part["missed"]
        income = price - lost
    management = 0.0 if "management_cost" in off else draws["management_cost_share"]
    if levers.management_cap is not None:
        management = np.minimum(management, levers.management_cap)
    costs = part["care"] + management * income + part["vat"]
    if "mobilisation" not in off:
        costs = costs + np.where(np.arange(t) == 0, inputs.mobilisation, 0.0)[None, :]
    surplus = income - costs
    if levers.corridor is not None:
        band = levers.corridor * price
        shared = levers.commissioner_share * (np.maximum(0.0, -surplus - band) - np.maximum(0.0, surplus - band))
        income, surplus = income + shared, surplus + shared
    return {"surplus": surplus, "cumulative": np.cumsum(surplus, axis=1), "income": income, "care": part["care"]}


def _cost_side(inputs: Inputs, draws: dict[str, np.ndarray], off: frozenset[str]) -> dict[str, Any]:
    """Demand, care cost, VAT and the share of the at-risk pot missed: what the price levers leave alone."""
    _runs, t = draws["demand_growth"].shape
    growth = draws["demand_growth"].copy()
    growth[:, 0] = 0.0  # the first year is the base
    if "demand_growth" in off:
        growth[:] = 0.0
    jumps = 0.0 if "demand_shocks" in off else draws["shock"] * draws["demand_shock_size"]
    step = 1.0 + growth + jumps
    demand = np.cumprod(step, axis=1)
    inflation = draws["cost_inflation"].copy()
    inflation[:, 0] = 0.0
    if "cost_inflation" in off:
        inflation = np.broadcast_to(_tariff(inputs, t)[None, :], inflation.shape)
    unit_cost = np.cumprod(1.0 + inflation, axis=1)
    realised = 1.0 if "unrealised_savings" in off else draws["savings_realised"]
    saving = np.cumprod(1.0 - inputs.savings[None, :] * realised, axis=1)
    care = draws["baseline_cost_gbp"] * demand * unit_cost * saving
    if inputs.scope_factor is not None:
        care = care * inputs.scope_factor[None, :]
    irrecoverable = inputs.vat_irrecoverable and "irrecoverable_vat" not in off
    vat = (inputs.vat_rate[None, :] * draws["vat_exposed_share"] * care) if irrecoverable else 0.0
    missed = 1.0 - np.minimum(draws["outcome_achievement"] * inputs.cap, 1.0)
    return {"step": step, "demand": demand, "care": care, "vat": vat, "missed": missed}


def _tariff(inputs: Inputs, t: int) -> np.ndarray:
    return inputs.tariff[:t] if inputs.tariff is not None else np.zeros(t)


def _truncate(inputs: Inputs, years: int) -> Inputs:
    """The inputs of the first ``years`` contract years only."""
    cut = {
        name: getattr(inputs, name)[:years]
        for name in ("price", "at_risk", "savings", "vat_rate", "scope_factor", "tariff")
        if getattr(inputs, name) is not None
    }
    return _replace(inputs, years=inputs.years[:years], **cut)


def deficit_and_gap(cumulative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per run: in deficit (its cumulative position ever below zero) and its funding gap."""
    worst = cumulative.min(axis=1)
    return worst < 0, np.maximum(0.0, -worst)


def summarise(inputs: Inputs, result: dict[str, np.ndarray]) -> dict[str, Any]:
    cumulative = result["cumulative"]
    runs, _t = cumulative.shape
    worst = cumulative.min(axis=1)
    gap = np.maximum(0.0, -worst)
    in_deficit = worst < 0
    first = np.where(in_deficit, np.argmax(cumulative < 0, axis=1), -1)
    first_years = np.array([d.year for d in inputs.years])[first[in_deficit]] if in_deficit.any() else np.array([])
    by_year = []
    for i, d in enumerate(inputs.years):
        column = cumulative[:, i]
        by_year.append(
            {
                "year": d.year,
                "income_mean_gbp": float(result["income"][:, i].mean()),
                "care_cost_mean_gbp": float(result["care"][:, i].mean()),
                "surplus_mean_gbp": float(result["surplus"][:, i].mean()),
                "cumulative_p10_gbp": float(np.quantile(column, 0.10)),
                "cumulative_p50_gbp": float(np.quantile(column, 0.50)),
                "cumulative_p90_gbp": float(np.quantile(column, 0.90)),
                "deficit_probability": float((column < 0).mean()),
            }
        )
    return {
        "runs": runs,
        "deficit_probability": float(in_deficit.mean()),
        "expected_gap_gbp": float(gap.mean()),
        "gap_p50_gbp": float(np.quantile(gap, 0.5)),
        "gap_p90_gbp": float(np.quantile(gap, 0.9)),
        "first_deficit_year_p50": int(np.quantile(first_years, 0.5, method="lower")) if len(first_years) else None,
        "first_year_gap_p50_gbp": float(np.quantile(np.maximum(0.0, -result["surplus"][:, 0]), 0.5)),
        "by_year": by_year,
        "baseline_cost_source": inputs.baseline_source,
    }


def sensitivity(inputs: Inputs, runs: int, seed: int, levers: Levers = NO_LEVERS) -> list[dict[str, Any]]:
    """Tornado data: the expected gap with each uncertain risk held at its 10th and 90th percentile."""
    rng = np.random.default_rng([seed, 99])
    out = []
    for name, dist in inputs.risks.items():
        if not dist.uncertain:
            continue
        gaps = []
        for q in (0.1, 0.9):
            draws = draw(inputs, runs, seed)  # common random numbers: only this risk changes
            draws[name] = np.full_like(draws[name], quantile(dist, q, rng))
            cumulative = simulate(inputs, draws, levers=levers)["cumulative"]
            gaps.append(float(np.maximum(0.0, -cumulative.min(axis=1)).mean()))
        out.append({"parameter": name, "low": gaps[0], "high": gaps[1], "swing": abs(gaps[1] - gaps[0])})
    return sorted(out, key=lambda r: -r["swing"])


def stress(
    contract: Contract,
    runs: int = 10_000,
    seed: int = 0,
    baseline_cost: float | None = None,
    with_sensitivity: bool = True,
    scope_factor: list[float] | None = None,
    adjust: Callable[[Inputs], Inputs] | None = None,
) -> dict[str, Any]:
    """The whole stress test: summary, year by year, and sensitivity. ``adjust`` changes the
    resolved inputs first (growth calibrated from a store's trend, :mod:`.trend`)."""
    if runs < 1:
        raise StressError("--runs must be at least 1")
    inputs = resolve_inputs(contract, baseline_cost, scope_factor)
    if adjust is not None:
        inputs = adjust(inputs)
    result = simulate(inputs, draw(inputs, runs, seed), levers=terms_levers(contract))
    summary = summarise(inputs, result)
    summary["seed"] = seed
    summary["sensitivity"] = (
        sensitivity(inputs, min(runs, 20_000), seed, terms_levers(contract)) if with_sensitivity else []
    )
    summary["_cumulative"] = result["cumulative"]
    summary["sources"] = inputs.sources
    return summary
