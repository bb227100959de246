"""How each amount of a contract year's payment was computed, step by step, down to the clause.

A finance director signing off a payment, or a provider disputing one, needs more than the
amounts: which formula, which parameter (with its value *and the clause of the contract that sets
it*), which measured rates (with numerator and denominator) and which state of the store. This
builds that explanation as data, in the spirit of OpenFisca's ``/trace`` (each computed value with
the parameters and inputs it depended on; openfisca-core changelog, "Adds called parameters to Web
API /trace endpoint") and Catala's explanations (each step of the computation tied to the article
of law it implements).

The trace re-does the steps of :func:`carecontract.payments.rules.pay_year` with the rules' own
functions (:func:`~carecontract.payments.rules.year_price`, :func:`~carecontract.payments.rules.portion`,
:func:`~carecontract.payments.rules.achievement`, :func:`~carecontract.payments.rules.at_risk_release`)
on the same inputs the driver reads (:mod:`carecontract.payments.pay`), then runs ``pay_year`` itself
and refuses to return a trace whose amounts differ from the postings: the explanation can never
drift from what is paid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from carecontract.errors import UserError
from carecontract.payments.close import payable_years
from carecontract.payments.costs import costs_by_year
from carecontract.payments.ledger import split_pence, to_pence
from carecontract.payments.pay import outcome_rates, stages_by_year, year_costs, year_indices
from carecontract.payments.rules import YearResult, achievement, at_risk_release, pay_year, portion, year_price
from carecontract.run import Run, StoreLike
from carecontract.terms.loader import Terms
from carecontract.terms.model import Contract, FeeStage, OutcomesStage
from carecontract.terms.parameters import PARAMETERS


class NothingToExplain(UserError, ValueError):
    """The store, as at the date asked, holds no events to explain a payment on."""


class TraceMismatch(AssertionError):
    """The trace's arithmetic disagrees with the payment rules: a bug, never a user's mistake."""


@dataclass
class Step:
    """One computed amount: what it is, its formula, the inputs it used and the clause it applies."""

    name: str
    pence: int | None
    formula: str
    inputs: dict[str, Any] = field(default_factory=dict)
    clause: str | None = None

    def as_dict(self) -> dict[str, Any]:
        gbp = None if self.pence is None else self.pence / 100
        return {"step": self.name, "gbp": gbp, "formula": self.formula, "inputs": self.inputs, "clause": self.clause}


def _parameter(contract: Contract, name: str, when: date, overrides: tuple[str, ...]) -> dict[str, Any]:
    """A parameter's value on a date, its unit and where it comes from (its clause, or a what-if)."""
    values = contract.parameters_at(when)
    overridden = next((o for o in overrides if o.split("=", 1)[0].strip() == name), None)
    spec = PARAMETERS[name]
    return {
        "parameter": name,
        "value": values.get(name),
        "unit": spec.unit,
        "on": when.isoformat(),
        "clause": contract.parameter_clauses.get(name),
        "source": f"--set {overridden}" if overridden else ("terms" if name in contract.parameters else "not set (0)"),
    }


def _price(contract: Contract, index: int, overrides: tuple[str, ...]) -> Step:
    start = contract.term.year_start(index)
    uplift = contract.price_uplift(index)
    inflation = [
        _parameter(contract, "tariff_inflation", contract.term.year_start(i), overrides) for i in range(1, index + 1)
    ]
    growth = []
    if contract.payments.fund_demand_growth:
        growth = [
            _parameter(contract, "demand_growth", contract.term.year_start(i), overrides) for i in range(1, index + 1)
        ]
    return Step(
        "price",
        year_price(contract, index),
        "value of the year × Π(1 + tariff_inflation)"
        + (" × Π(1 + demand_growth)" if growth else "")
        + " over the years after the first",
        {
            "value_gbp": str(contract.value_per_year()[start.year]),
            "uplift": str(uplift),
            "tariff_inflation": inflation,
            **({"demand_growth": growth} if growth else {}),
            "demand_growth_funded": contract.payments.fund_demand_growth,
        },
        contract.value.clause,
    )


def _measures(run: Run, contract: Contract, index: int) -> dict[str, dict[str, Any]]:
    """Each outcome's measured row over the year (numerator, denominator, rate)."""
    start, end = contract.term.year_start(index), contract.term.year_end(index)
    ids = [o.measure for o in contract.outcomes]
    rows = {r["measure"]: r for r in run.measures(start, end, only=ids)} if ids else {}
    return rows


def _outcome_steps(
    run: Run, contract: Contract, stage: OutcomesStage, index: int, price: int, rates: dict[str, float | None]
) -> tuple[list[Step], int]:
    """Budget, at-risk pot, each outcome's achievement, the released pot: the commissioners' payment."""
    payments = contract.payments
    budget = price if stage.capitation_gbp_per_year is None else to_pence(stage.capitation_gbp_per_year)
    at_risk = portion(budget, stage.at_risk_share)
    measured = _measures(run, contract, index)
    outcomes = []
    total = 0.0
    for o in contract.outcomes:
        got = achievement(o, rates.get(o.measure))
        total += o.weight * got
        row = measured.get(o.measure, {})
        outcomes.append(
            {
                "measure": o.measure,
                "basis": o.basis,
                "numerator": row.get("numerator"),
                "denominator": row.get("denominator"),
                "rate": rates.get(o.measure),
                "target": o.target,
                "threshold": o.threshold,
                "minimum_detectable_change": o.minimum_detectable_change,
                "weight": o.weight,
                "achievement": got,
                "weighted": o.weight * got,
                "clause": o.clause,
                **({"note": "no measured rate for the year: achievement 0"} if rates.get(o.measure) is None else {}),
            }
        )
    released = at_risk_release(at_risk, total, payments.outcome_payment.cap_share)
    paid = budget - at_risk + released
    steps = [
        Step(
            "budget",
            budget,
            "capitation_gbp_per_year" if stage.capitation_gbp_per_year is not None else "the price (no capitation set)",
            {"stage": stage.name},
            stage.clause,
        ),
        Step(
            "at_risk_pot",
            at_risk,
            "budget × at_risk_share",
            {"at_risk_share": stage.at_risk_share, "stage": stage.name},
            stage.clause,
        ),
        Step(
            "achievement",
            None,
            "Σ weight × achievement; each achievement linear from threshold to target (all or nothing with no "
            "threshold), 0 within minimum_detectable_change of the threshold, in [0, 1]",
            {"weighted_achievement": total, "outcomes": outcomes},
            None,
        ),
        Step(
            "released_pot",
            released,
            "min(at_risk_pot × min(achievement, 1) × cap_share, at_risk_pot × cap_share)",
            {"cap_share": payments.outcome_payment.cap_share, "achievement": total},
            payments.outcome_payment.clause or payments.clause,
        ),
        Step(
            "paid_by_commissioners",
            paid,
            "budget − at_risk_pot + released_pot",
            {},
            stage.clause,
        ),
    ]
    return steps, paid


def _vat_step(contract: Contract, start: date, remainder: int, overrides: tuple[str, ...]) -> tuple[Step, int]:
    payments = contract.payments
    treatment = payments.vat.get(contract.prime.code, "not stated (recoverable)")
    rate = _parameter(contract, "vat_rate", start, overrides)
    vat = 0
    if treatment == "irrecoverable" and rate["value"]:
        vat = remainder - int(Decimal(remainder) / (1 + Decimal(str(rate["value"]))))
    return (
        Step(
            "vat",
            vat,
            "money for care − ⌊money for care ÷ (1 + vat_rate)⌋ when the prime cannot recover VAT, else 0",
            {"prime_vat_treatment": treatment, "vat_rate": rate, "money_for_care_gbp": remainder / 100},
            rate["clause"] or payments.clause,
        ),
        remainder - vat,
    )


def trace_year(
    contract: Contract,
    run: Run,
    index: int,
    stage: FeeStage | OutcomesStage,
    gate: dict[str, Any] | None,
    costs: dict[str, int],
    overrides: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The trace of contract year ``index``: every step, then a check against :func:`pay_year`."""
    start, end = contract.term.year_start(index), contract.term.year_end(index)
    price = _price(contract, index, overrides)
    steps = [price]
    rates = outcome_rates(run, contract, index) if isinstance(stage, OutcomesStage) else {}
    if isinstance(stage, FeeStage):
        paid = price.pence or 0
        keep = min(paid, to_pence(stage.fee_gbp_per_year))
        steps.append(Step("paid_by_commissioners", paid, "the price (fee stage)", {"stage": stage.name}, stage.clause))
        steps.append(
            Step(
                "management",
                keep,
                "min(price, fee_gbp_per_year): the prime keeps its fee",
                {"fee_gbp_per_year": str(stage.fee_gbp_per_year), "gate": gate},
                stage.clause,
            )
        )
    else:
        outcome_steps, paid = _outcome_steps(run, contract, stage, index, price.pence or 0, rates)
        steps += outcome_steps
        share = _parameter(contract, "management_share", start, overrides)
        keep = portion(paid, share["value"] or 0)
        on_top = contract.payments.management_fee == "on_top"
        formula = "paid_by_commissioners × management_share"
        formula += "; on top: the commissioners pay it in addition" if on_top else "; out of what the commissioners pay"
        steps.append(Step("management", keep, formula, {"management_share": share}, share["clause"]))
        if on_top:
            paid += keep
    split = split_pence(paid, {c.code: c.share for c in contract.commissioners})
    steps.append(
        Step(
            "commissioners' shares",
            paid,
            "split by commissioner share, to the penny (largest remainder)",
            {c.code: {"share": c.share, "gbp": split[c.code] / 100} for c in contract.commissioners},
            next((c.clause for c in contract.commissioners if c.clause), None),
        )
    )
    vat, remainder = _vat_step(contract, start, paid - keep, overrides)
    steps.append(vat)
    costs = {s.code: costs.get(s.code, 0) for s in contract.subcontractors}
    transactions, result = pay_year(
        contract,
        index,
        stage,
        rates,
        costs,
        gate,
    )
    rule = contract.payments.gain_loss_share
    if result.variance_pence is not None and rule is not None:
        steps.append(
            Step(
                "gain_loss_share",
                result.shared_with_commissioners_pence,
                "variance = money for care − recorded in-scope cost; commissioners' part = "
                "|variance| × (1 − prime_share), capped at cap_gbp (+ returned to them on an underspend, − paid in "
                "addition on an overspend); the prime keeps or bears the rest from its management account",
                {
                    "money_for_care_gbp": remainder / 100,
                    "recorded_cost_gbp": sum(costs.values()) / 100,
                    "variance_gbp": result.variance_pence / 100,
                    "prime_share": rule.prime_share,
                    "cap_gbp": None if rule.cap_gbp is None else str(rule.cap_gbp),
                },
                rule.clause or contract.payments.clause,
            )
        )
        basis = "their recorded in-scope cost (the gain/loss share settles the difference)"
    else:
        basis = "money for care split in proportion to recorded in-scope cost (equally if none is recorded)"
    subs = contract.subcontractors
    steps.append(
        Step(
            "subcontractors",
            sum(result.to_subcontractors_pence.values()),
            basis,
            {
                s.code: {
                    "recorded_cost_gbp": costs[s.code] / 100,
                    "paid_gbp": result.to_subcontractors_pence.get(s.code, 0) / 100,
                    "clause": s.clause,
                }
                for s in subs
            },
            None,
        )
    )
    _check(steps, result)
    return {
        "year": start.year,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "stage": stage.name,
        "kind": stage.kind,
        "steps": [s.as_dict() for s in steps],
        "postings": [
            {
                "txn": t.id,
                "rule": t.rule,
                "narration": t.narration,
                "postings": [(p.account, p.pence / 100) for p in t.postings],
            }
            for t in transactions
        ],
    }


def _check(steps: list[Step], result: YearResult) -> None:
    """Refuse a trace whose amounts are not the ones the rules posted."""
    got = {s.name: s.pence for s in steps}
    want = {
        "price": result.price_pence,
        "management": result.management_pence,
        "vat": result.vat_pence,
        "released_pot": result.released_pence if result.kind == "outcomes" else None,
        "at_risk_pot": result.at_risk_pence if result.kind == "outcomes" else None,
    }
    for name, pence in want.items():
        if name in got and got[name] != pence:
            raise TraceMismatch(f"trace step {name} is {got[name]} pence; the rules posted {pence}")
    paid = got["commissioners' shares"]
    if paid is not None and paid - result.shared_with_commissioners_pence != result.paid_by_commissioners_pence:
        raise TraceMismatch(f"trace pays {paid} pence; the rules posted {result.paid_by_commissioners_pence}")


def explain_payment(terms: Terms, store: Run | StoreLike, years: list[int] | None = None) -> dict[str, Any]:
    """The trace of each contract year asked for (by the calendar year it starts in; default every
    year the store's events reach), with the terms' provenance and the as-at the figures were read on."""
    run = Run.of(store, terms=terms)
    contract = terms.contract
    if run.event_range()[0] is None:
        when = f" as at {run.as_at}" if run.as_at is not None else ""
        raise NothingToExplain(f"{run.store.root}: the store holds no accepted events{when} to explain a payment on")
    indices = year_indices(contract, payable_years(contract, run, years))
    stages = stages_by_year(contract, run, max(indices))
    cube = costs_by_year(run, contract)
    out = []
    for i in indices:
        stage = contract.stage_named(stages.stage_of_year[i])
        out.append(
            trace_year(contract, run, i, stage, stages.gates.get(i), year_costs(contract, cube, i), terms.overrides)
        )
    return {
        **terms.provenance(),
        "as_at": None if run.as_at is None else str(run.as_at),
        "store_version": run.version,
        "years": out,
    }
