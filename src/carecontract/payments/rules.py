"""Contract terms × data → who pays whom, for each contract year, in the ledger.

The rules, in order, for contract year *y* (documented in docs/payments.md):

1. **Price**: the terms' value for *y*, uplifted by ``tariff_inflation`` compounded from the
   second year, and by ``demand_growth`` too only if ``payments.fund_demand_growth`` is set.
   Otherwise demand growth and cost inflation change costs, not the price: the seeds' contracts
   were fixed-price with growth unfunded, exactly the risk the viability stress test exposes.
2. **Stage**: a fee stage lasts until its gate is passed (evaluated from the store over the
   year) or its ``max_years`` run out; then the outcomes stage.
3. **Commissioners pay the prime**, each its share, split to the penny:
   - fee stage: the whole price (the prime manages the existing contracts and keeps its fee);
   - outcomes stage: the budget less the share at risk, plus the at-risk pot × achievement,
     capped at ``cap_share`` of the pot. Achievement is the weighted sum over the contract's
     outcomes of each one's achievement in [0, 1] (linear from threshold to target, or all or
     nothing without a threshold).
4. **The prime keeps** its fee (fee stage) or ``management_share`` of what it received.
5. **VAT**: where the prime cannot recover VAT (``payments.vat`` says ``irrecoverable``), VAT at
   ``vat_rate`` on what it pays its subcontractors goes to HMRC out of the same money.
6. **Subcontractors** get the rest, in proportion to their recorded costs in the store for the
   year (equally if the store has none for them).
7. **Gain/loss share** (outcomes stage, when the terms have one): subcontractors are paid their
   recorded costs for in-scope care instead, and the difference from the money left for care is
   shared — the commissioners get back (underspend) or pay in addition (overspend)
   ``1 - prime_share`` of it, capped at ``cap_gbp``; the prime keeps or bears the rest, from its
   management account.

Costs are in-scope only: events whose tumour site (their own, or their patient's first
diagnosed site) is in the contract's scope that year; a contract without a scope counts all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import ibis
from ibis.expr.types import Table

from carecontract.engine import Engine
from carecontract.measures.compute import Sources, compute_measures, events_table, sources
from carecontract.payments.ledger import Ledger, split_pence, to_pence
from carecontract.records.quality import quality
from carecontract.records.store import Store
from carecontract.terms.gate import evaluate_gate
from carecontract.terms.model import MEASURES, Contract, FeeStage, Outcome, OutcomesStage


def portion(pence: int, share: float) -> int:
    """``share`` of an amount in pence, rounded half to even to a whole penny."""
    return int((Decimal(pence) * Decimal(str(share))).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def achievement(outcome: Outcome, rate: float | None) -> float:
    """How far one outcome was achieved, in [0, 1]; monotone in the rate in its good direction."""
    if rate is None:
        return 0.0
    higher = MEASURES[outcome.measure]
    target, threshold = outcome.target, outcome.threshold
    if threshold is None or threshold == target:
        met = rate >= target if higher else rate <= target
        return 1.0 if met else 0.0
    share = (rate - threshold) / (target - threshold)
    return min(1.0, max(0.0, share))


def weighted_achievement(outcomes: list[Outcome], rates: dict[str, float | None]) -> float:
    return sum(o.weight * achievement(o, rates.get(o.measure)) for o in outcomes)


@dataclass
class YearResult:
    year: int
    start: date
    end: date
    stage: str
    kind: str
    price_pence: int
    paid_by_commissioners_pence: int
    at_risk_pence: int = 0
    released_pence: int = 0
    achievement: float | None = None
    rates: dict[str, float | None] = field(default_factory=dict)
    gate: dict[str, Any] | None = None
    management_pence: int = 0
    vat_pence: int = 0
    to_subcontractors_pence: dict[str, int] = field(default_factory=dict)
    recorded_cost_pence: int | None = None
    variance_pence: int | None = None  # money for care less recorded cost: + underspend, - overspend
    shared_with_commissioners_pence: int = 0  # + returned to them, - paid in addition by them


def _with_site(events: Table, wanted: Table) -> tuple[Table, ibis.Value]:
    """``wanted`` with each event's tumour site: its own, else its patient's first diagnosed site."""
    first_site = (
        events.filter((events.event_type == "diagnosis") & events.tumour_site.notnull())
        .group_by("patient_id")
        .aggregate(first_site=lambda t: t.tumour_site.argmin(t.event_date))
    )
    joined = wanted.left_join(first_site, "patient_id")
    return joined, joined.tumour_site.coalesce(joined.first_site)


def subcontractor_costs(
    events: Table, codes: list[str], start: date, end: date, sites: list[str] | None = None
) -> dict[str, int]:
    """Recorded cost (pence) of each subcontractor's activity in [start, end], in scope if ``sites``.

    An event without a tumour site of its own takes its patient's first diagnosed site. One Ibis
    expression, so DuckDB and Spark give the same pence.
    """
    if not codes:
        return {}
    wanted = events.filter(events.event_date.between(start, end), events.provider_code.isin(codes))
    if sites is not None:
        wanted, site = _with_site(events, wanted)
        wanted = wanted.filter(site.isin(sites))
    totals = wanted.group_by("provider_code").aggregate(pence=(wanted.cost_gbp.sum() * 100).round().cast("int64"))
    found = {r["provider_code"]: int(r["pence"] or 0) for r in totals.to_pyarrow().to_pylist()}
    return {code: found.get(code, 0) for code in codes}


def yearly_costs(events: Table, contract: Contract) -> dict[int, dict[str, dict[str | None, int]]]:
    """Recorded cost (pence) by contract year (the calendar year it starts in), subcontractor and
    tumour site, for the whole term in one pass over the events.

    Closing many years then costs one scan rather than one per year (at 100M events and 9 years,
    the per-year queries were the largest part of a pay run). Costs are exact pence (DECIMAL), so
    summing the sites of a year gives exactly what :func:`subcontractor_costs` gives for it.
    """
    from carecontract.baseline.compute import contract_year

    codes = [s.code for s in contract.subcontractors]
    if not codes:
        return {}
    start, last = contract.term.start, contract.term.end - timedelta(days=1)
    wanted = events.filter(events.event_date.between(start, last), events.provider_code.isin(codes))
    if contract.scope:
        wanted, site = _with_site(events, wanted)
    else:
        site = ibis.null("string")  # no scope by site: every event counts, whatever its site
    cube = wanted.group_by(
        year=contract_year(wanted.event_date, start.month, start.day), provider=wanted.provider_code, site=site
    ).aggregate(pence=(wanted.cost_gbp.sum() * 100).round().cast("int64"))
    out: dict[int, dict[str, dict[str | None, int]]] = {}
    for r in cube.to_pyarrow().to_pylist():
        out.setdefault(int(r["year"]), {}).setdefault(r["provider"], {})[r["site"]] = int(r["pence"] or 0)
    return out


def costs_in_scope(cube: dict[int, dict[str, dict[str | None, int]]], year: int, codes: list[str],
                   sites: list[str] | None) -> dict[str, int]:  # fmt: skip
    """One year's cost per subcontractor from :func:`yearly_costs`, counting only ``sites`` if given."""
    by_provider = cube.get(year, {})
    return {
        code: sum(p for site, p in by_provider.get(code, {}).items() if sites is None or site in sites)
        for code in codes
    }


@dataclass
class Stages:
    """Which stage each contract year is in, and the gate evaluated at the end of each fee year."""

    stage_of_year: dict[int, str]
    gates: dict[int, dict[str, Any]]


def pay_year(
    contract: Contract,
    store: Store,
    year_index: int,
    stages: Stages,
    ledger: Ledger,
    src: Sources,
    cube: dict[int, dict[str, dict[str | None, int]]],
) -> YearResult:
    """Apply the rules for one contract year and post its transactions to ``ledger``; ``cube`` is
    :func:`yearly_costs` for the contract."""
    start = contract.term.year_start(year_index)
    end = contract.term.year_start(year_index + 1) - timedelta(days=1)
    year = start.year
    price = to_pence(contract.value_per_year()[year] * contract.price_uplift(year_index))
    stage_name = stages.stage_of_year[year_index]
    stage = next(s for s in contract.stages if s.name == stage_name)
    params = contract.parameters_at(start)
    result = YearResult(year, start, end, stage.name, stage.kind, price, 0)
    prime = f"prime:{contract.prime.code}"
    if isinstance(stage, FeeStage):
        paid = price
        keep = min(paid, to_pence(stage.fee_gbp_per_year))
        result.gate = stages.gates[year_index]
    else:
        assert isinstance(stage, OutcomesStage)
        budget = to_pence(stage.capitation_gbp_per_year) if stage.capitation_gbp_per_year is not None else price
        at_risk = portion(budget, stage.at_risk_share)
        outcome_ids = [o.measure for o in contract.outcomes]
        rows = compute_measures(store, start, end, only=outcome_ids, src=src) if outcome_ids else []
        result.rates = {r["measure"]: r["rate"] for r in rows}
        result.achievement = weighted_achievement(contract.outcomes, result.rates)
        cap = contract.payments.outcome_payment.cap_share
        released = min(portion(at_risk, min(result.achievement, 1.0) * cap), portion(at_risk, cap))
        result.at_risk_pence, result.released_pence = at_risk, released
        paid = budget - at_risk + released
        keep = portion(paid, params.get("management_share") or 0)
        if contract.payments.management_fee == "on_top":
            paid += keep
    result.paid_by_commissioners_pence = paid
    shares = {f"commissioner:{c.code}": c.share for c in contract.commissioners}
    for account, pence in split_pence(paid, shares).items():
        ledger.transfer(f"{year}-contract-{account}", year, "contract_payment",
                        f"{stage.name}: commissioner pays its share to the prime", account, prime, pence)  # fmt: skip
    ledger.transfer(f"{year}-management", year, "management_fee" if stage.kind == "outcomes" else "stage1_fee",
                    "what the prime keeps", prime, f"management:{contract.prime.code}", keep)  # fmt: skip
    result.management_pence = keep
    remainder = paid - keep
    vat_rate = Decimal(str(params.get("vat_rate") or 0))
    if contract.payments.vat.get(contract.prime.code) == "irrecoverable" and vat_rate:
        to_subs = int(Decimal(remainder) / (1 + vat_rate))
        vat = remainder - to_subs
        ledger.transfer(f"{year}-vat", year, "vat", "VAT the prime cannot recover on subcontracted care",
                        prime, "hmrc:vat", vat)  # fmt: skip
        result.vat_pence = vat
        remainder = to_subs
    codes = [s.code for s in contract.subcontractors]
    sites = contract.scope_at(start) if contract.scope else None
    costs = costs_in_scope(cube, start.year, codes, sites)
    share_rule = contract.payments.gain_loss_share
    if share_rule and stage.kind == "outcomes" and any(costs.values()):
        remainder = _share_gain_or_loss(contract, ledger, result, remainder, costs, share_rule, year, prime)
    if codes:
        weights = costs if any(costs.values()) else dict.fromkeys(codes, 1)
        for code, pence in split_pence(remainder, {k: float(v) for k, v in weights.items()}).items():
            ledger.transfer(f"{year}-sub-{code}", year, "subcontract_payment",
                            "prime pays a subcontractor, in proportion to its recorded costs",
                            prime, f"subcontractor:{code}", pence)  # fmt: skip
            result.to_subcontractors_pence[code] = pence
    return result


def _share_gain_or_loss(contract, ledger, result, remainder, costs, rule, year, prime) -> int:
    """Share the difference between the money for care and its recorded cost; return what subs get."""
    recorded = sum(costs.values())
    variance = remainder - recorded
    commissioners_part = portion(abs(variance), 1 - rule.prime_share)
    if rule.cap_gbp is not None:
        commissioners_part = min(commissioners_part, to_pence(rule.cap_gbp))
    prime_part = abs(variance) - commissioners_part
    shares = {f"commissioner:{c.code}": c.share for c in contract.commissioners}
    management = f"management:{contract.prime.code}"
    gain = variance > 0
    rule_name, what = ("gain_share", "an underspend") if gain else ("loss_share", "an overspend")
    for account, pence in split_pence(commissioners_part, shares).items():
        payer, payee = (prime, account) if gain else (account, prime)  # money flows back on a gain
        ledger.transfer(f"{year}-{rule_name}-{account}", year, rule_name, f"commissioners' share of {what}",
                        payer, payee, pence)  # fmt: skip
    payer, payee = (prime, management) if gain else (management, prime)
    ledger.transfer(f"{year}-{rule_name}-prime", year, rule_name, f"the prime's share of {what}", payer, payee,
                    prime_part)  # fmt: skip
    result.recorded_cost_pence = recorded
    result.variance_pence = variance
    result.shared_with_commissioners_pence = commissioners_part if variance > 0 else -commissioners_part
    result.paid_by_commissioners_pence -= result.shared_with_commissioners_pence
    return recorded


def stages_by_year(contract: Contract, store: Store, until_index: int, src: Sources | None = None) -> Stages:
    """Which stage each contract year is in: fee years until the gate is passed or time runs out.
    Each fee year's gate is evaluated once, here; the data-quality part of it (the whole store) once
    per run."""
    fee = next((s for s in contract.stages if isinstance(s, FeeStage)), None)
    outcomes = contract.stages[-1].name
    stages = Stages({}, {})
    in_fee = fee is not None
    report = None
    for i in range(until_index + 1):
        if in_fee and fee is not None:
            stages.stage_of_year[i] = fee.name
            if report is None and (fee.gate.data_completeness is not None or fee.gate.data_validity is not None):
                report = quality(store).as_dict()
            start, end = contract.term.year_start(i), contract.term.year_start(i + 1) - timedelta(days=1)
            gate = evaluate_gate(contract, store, start, end, src=src, quality_report=report)
            stages.gates[i] = gate
            if gate["passed"] or i + 1 >= fee.max_years:
                in_fee = False
        else:
            stages.stage_of_year[i] = outcomes
    return stages


def pay_contract(
    contract: Contract,
    store: str | Store,
    years: list[int] | None = None,
    engine: Engine = "duckdb",
    spark_master: str | None = None,
) -> tuple[Ledger, list[YearResult]]:
    """The ledger for the given contract years (by the calendar year each starts in; default all).

    The queries (measures, costs) run on ``engine``; the rules and the ledger are plain Python.
    """
    store = store if isinstance(store, Store) else Store(store)
    starts = [d.year for d in contract.contract_years()]
    wanted = years or starts
    unknown = [y for y in wanted if y not in starts]
    if unknown:
        raise ValueError(
            f"{contract.name} has no contract year starting in {unknown} (years: {starts[0]}–{starts[-1]})"
        )
    indices = [starts.index(y) for y in wanted]
    # one pathway table for every year's measures
    src = sources(events_table(store, engine=engine, spark_master=spark_master), detail=False)
    stages = stages_by_year(contract, store, max(indices), src)
    ledger = Ledger()
    cube = yearly_costs(src.events, contract)
    results = [pay_year(contract, store, i, stages, ledger, src, cube) for i in sorted(indices)]
    return ledger, results
