"""Paying a contract from the data: the driver that reads the store and applies the pure rules.

For each contract year asked for it reads, through the :class:`~carecontract.run.Run`, what the
rules need — which stage the year is in (each fee year's gate, measured from the store), the
contract's outcome rates over the year, and each subcontractor's in-scope cost — and hands them
to :func:`carecontract.payments.rules.pay_year`, which returns the year's transactions. The
queries run on the run's engine; the rules and the ledger are plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carecontract.engine import Engine
from carecontract.errors import UserError
from carecontract.payments.costs import CostCube, costs_by_year, costs_in_scope
from carecontract.payments.ledger import Ledger
from carecontract.payments.rules import YearResult, pay_year
from carecontract.run import Run, StoreLike
from carecontract.terms.gate import evaluate_gate
from carecontract.terms.model import Contract, OutcomesStage


class PaymentError(UserError, ValueError):
    """A payment run that cannot be done as asked (a year the contract does not have)."""


@dataclass
class Stages:
    """Which stage each contract year is in, and the gate evaluated at the end of each fee year."""

    stage_of_year: dict[int, str]
    gates: dict[int, dict[str, Any]]


def stages_by_year(contract: Contract, run: Run | StoreLike, until_index: int) -> Stages:
    """Which stage each contract year is in: fee years until the gate is passed or time runs out.

    Each fee year's gate is evaluated once, here; the run computes the data-quality part of it
    (the whole store) once.
    """
    run = Run.of(run)
    fee = contract.fee_stage
    outcomes = contract.stages[-1].name
    stages = Stages({}, {})
    in_fee = fee is not None
    for i in range(until_index + 1):
        if in_fee and fee is not None:
            stages.stage_of_year[i] = fee.name
            gate = evaluate_gate(contract, run, contract.term.year_start(i), contract.term.year_end(i))
            stages.gates[i] = gate
            if gate["passed"] or i + 1 >= fee.max_years:
                in_fee = False
        else:
            stages.stage_of_year[i] = outcomes
    return stages


def year_indices(contract: Contract, years: list[int] | None) -> list[int]:
    """The contract-year indices of ``years`` (calendar years they start in; default: every year), sorted."""
    starts = [d.year for d in contract.contract_years()]
    wanted = years or starts
    unknown = [y for y in wanted if y not in starts]
    if unknown:
        raise PaymentError(
            f"{contract.name} has no contract year starting in {unknown} (years: {starts[0]}–{starts[-1]})"
        )
    return sorted(starts.index(y) for y in wanted)


def outcome_rates(run: Run, contract: Contract, year_index: int) -> dict[str, float | None]:
    """The measured rate of each of the contract's outcomes over one contract year."""
    ids = [o.measure for o in contract.outcomes]
    if not ids:
        return {}
    start, end = contract.term.year_start(year_index), contract.term.year_end(year_index)
    rates = {r["measure"]: r["rate"] for r in run.measures(start, end, only=ids)}
    adjusted = [o.measure for o in contract.outcomes if o.basis == "adjusted"]
    if adjusted:  # paid on the case-mix adjusted rate (docs/measures.md, "Fair comparisons")
        from carecontract.measures.casemix import adjusted_rate

        rates |= {m: adjusted_rate(run.sources(detail=True), m, start, end) for m in adjusted}
    return rates


def year_costs(contract: Contract, cube: CostCube, year_index: int) -> dict[str, int]:
    """Each subcontractor's recorded cost for one contract year, counting only the sites then in scope."""
    start = contract.term.year_start(year_index)
    sites = contract.scope_at(start) if contract.scope else None
    return costs_in_scope(cube, start.year, [s.code for s in contract.subcontractors], sites)


def pay_contract(
    contract: Contract,
    store: Run | StoreLike,
    years: list[int] | None = None,
    engine: Engine = "duckdb",
    spark_master: str | None = None,
) -> tuple[Ledger, list[YearResult]]:
    """The ledger for the given contract years (by the calendar year each starts in; default all).

    ``store`` is a Run (its engine is used) or a store, read on ``engine``.
    """
    run = Run.of(store, engine=engine, spark_master=spark_master)
    indices = year_indices(contract, years)
    stages = stages_by_year(contract, run, max(indices))
    cube = costs_by_year(run, contract)
    ledger = Ledger()
    results = []
    for i in indices:
        stage = contract.stage_named(stages.stage_of_year[i])
        rates = outcome_rates(run, contract, i) if isinstance(stage, OutcomesStage) else {}
        transactions, result = pay_year(contract, i, stage, rates, year_costs(contract, cube, i), stages.gates.get(i))
        for txn in transactions:
            ledger.add(txn)
        results.append(result)
    return ledger, results
