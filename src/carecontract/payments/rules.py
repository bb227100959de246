"""Contract terms × measured rates × recorded costs → who pays whom, for one contract year.

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
     capped at ``cap_share`` of the pot (:func:`at_risk_release`). Achievement is the weighted
     sum over the contract's outcomes of each one's achievement in [0, 1] (linear from threshold
     to target, or all or nothing without a threshold).
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

Everything here is pure, as Beancount's plugins take entries and return entries: :func:`pay_year`
takes the year's stage, measured rates and in-scope costs and returns its transactions. Reading
the store (the gate, the rates, the costs) is :mod:`carecontract.payments.pay`'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from carecontract.measures.definitions import HIGHER_IS_BETTER
from carecontract.payments import accounts
from carecontract.payments.ledger import Ledger, Transaction, split_pence, to_pence
from carecontract.terms.model import Contract, FeeStage, GainLossShare, Outcome, OutcomesStage


def portion(pence: int, share: float) -> int:
    """``share`` of an amount in pence, rounded half to even to a whole penny."""
    return int((Decimal(pence) * Decimal(str(share))).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def achievement(outcome: Outcome, rate: float | None) -> float:
    """How far one outcome was achieved, in [0, 1]; monotone in the rate in its good direction."""
    if rate is None:
        return 0.0
    higher = HIGHER_IS_BETTER[outcome.measure]
    target, threshold = outcome.target, outcome.threshold
    if threshold is None or threshold == target:
        met = rate >= target if higher else rate <= target
        return 1.0 if met else 0.0
    share = (rate - threshold) / (target - threshold)
    mdc = outcome.minimum_detectable_change
    if mdc is not None and (rate - threshold if higher else threshold - rate) < mdc:
        return 0.0  # within random variation of the threshold: nothing moves (cf. 42 CFR 425.604 MSR)
    return min(1.0, max(0.0, share))


def weighted_achievement(outcomes: list[Outcome], rates: Mapping[str, float | None]) -> float:
    return sum(o.weight * achievement(o, rates.get(o.measure)) for o in outcomes)


def at_risk_release(at_risk_pence: int, achievement: float, cap_share: float) -> int:
    """The part of the at-risk pot earned: the pot × achievement (at most 1), capped at ``cap_share``
    of the pot. The commissioners pay the budget less the pot, plus this."""
    return min(portion(at_risk_pence, min(achievement, 1.0) * cap_share), portion(at_risk_pence, cap_share))


def year_price(contract: Contract, year_index: int) -> int:
    """The price of contract year ``year_index`` in pence: its value, uplifted as the terms say (rule 1)."""
    year = contract.term.year_start(year_index).year
    return to_pence(contract.value_per_year()[year] * contract.price_uplift(year_index))


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


def _outcomes_income(
    contract: Contract, stage: OutcomesStage, result: YearResult, rates: Mapping[str, float | None]
) -> tuple[int, int]:
    """(paid by the commissioners, kept by the prime) in an outcomes year (rules 3 and 4)."""
    budget = result.price_pence
    if stage.capitation_gbp_per_year is not None:
        budget = to_pence(stage.capitation_gbp_per_year)
    at_risk = portion(budget, stage.at_risk_share)
    result.rates = dict(rates)
    result.achievement = weighted_achievement(contract.outcomes, result.rates)
    released = at_risk_release(at_risk, result.achievement, contract.payments.outcome_payment.cap_share)
    result.at_risk_pence, result.released_pence = at_risk, released
    paid = budget - at_risk + released
    keep = portion(paid, contract.parameters_at(result.start).get("management_share") or 0)
    if contract.payments.management_fee == "on_top":
        paid += keep
    return paid, keep


def _pay_prime(ledger: Ledger, contract: Contract, result: YearResult, paid: int, keep: int) -> None:
    """Each commissioner pays its share of ``paid`` to the prime, which keeps ``keep``."""
    year, prime = result.year, accounts.prime(contract.prime.code)
    shares = {accounts.commissioner(c.code): c.share for c in contract.commissioners}
    narration = f"{result.stage}: commissioner pays its share to the prime"
    for account, pence in split_pence(paid, shares).items():
        ledger.transfer(f"{year}-contract-{account}", year, "contract_payment", narration, account, prime, pence)
    rule = "management_fee" if result.kind == "outcomes" else "stage1_fee"
    management = accounts.management(contract.prime.code)
    ledger.transfer(f"{year}-management", year, rule, "what the prime keeps", prime, management, keep)
    result.paid_by_commissioners_pence = paid
    result.management_pence = keep


def _pay_vat(ledger: Ledger, contract: Contract, result: YearResult, remainder: int) -> int:
    """VAT the prime cannot recover, out of the money for care (rule 5); returns what is left for care."""
    vat_rate = Decimal(str(contract.parameters_at(result.start).get("vat_rate") or 0))
    if contract.payments.vat.get(contract.prime.code) != "irrecoverable" or not vat_rate:
        return remainder
    to_subs = int(Decimal(remainder) / (1 + vat_rate))
    vat = remainder - to_subs
    narration = "VAT the prime cannot recover on subcontracted care"
    year = result.year
    ledger.transfer(f"{year}-vat", year, "vat", narration, accounts.prime(contract.prime.code), accounts.HMRC_VAT, vat)
    result.vat_pence = vat
    return to_subs


def _share_gain_or_loss(
    ledger: Ledger, contract: Contract, result: YearResult, remainder: int, costs: dict[str, int], rule: GainLossShare
) -> int:
    """Share the difference between the money for care and its recorded cost (rule 7); return what
    the subcontractors get (their recorded cost)."""
    year, prime = result.year, accounts.prime(contract.prime.code)
    recorded = sum(costs.values())
    variance = remainder - recorded
    commissioners_part = portion(abs(variance), 1 - rule.prime_share)
    if rule.cap_gbp is not None:
        commissioners_part = min(commissioners_part, to_pence(rule.cap_gbp))
    prime_part = abs(variance) - commissioners_part
    shares = {accounts.commissioner(c.code): c.share for c in contract.commissioners}
    management = accounts.management(contract.prime.code)
    gain = variance > 0
    rule_name, what = ("gain_share", "an underspend") if gain else ("loss_share", "an overspend")
    for account, pence in split_pence(commissioners_part, shares).items():
        payer, payee = (prime, account) if gain else (account, prime)  # money flows back on a gain
        narration = f"commissioners' share of {what}"
        ledger.transfer(f"{year}-{rule_name}-{account}", year, rule_name, narration, payer, payee, pence)
    payer, payee = (prime, management) if gain else (management, prime)
    narration = f"the prime's share of {what}"
    ledger.transfer(f"{year}-{rule_name}-prime", year, rule_name, narration, payer, payee, prime_part)
    result.recorded_cost_pence = recorded
    result.variance_pence = variance
    result.shared_with_commissioners_pence = commissioners_part if variance > 0 else -commissioners_part
    result.paid_by_commissioners_pence -= result.shared_with_commissioners_pence
    return recorded


def _pay_subcontractors(ledger: Ledger, contract: Contract, result: YearResult, remainder: int, costs: dict) -> None:
    """The rest to the subcontractors, by recorded cost (equally if none is recorded) (rule 6)."""
    codes = list(costs)
    if not codes:
        return
    year, prime = result.year, accounts.prime(contract.prime.code)
    weights = costs if any(costs.values()) else dict.fromkeys(codes, 1)
    narration = "prime pays a subcontractor, in proportion to its recorded costs"
    for code, pence in split_pence(remainder, {k: float(v) for k, v in weights.items()}).items():
        payee = accounts.subcontractor(code)
        ledger.transfer(f"{year}-sub-{code}", year, "subcontract_payment", narration, prime, payee, pence)
        result.to_subcontractors_pence[code] = pence


def pay_year(
    contract: Contract,
    year_index: int,
    stage: FeeStage | OutcomesStage,
    rates: Mapping[str, float | None],
    costs: Mapping[str, int],
    gate: dict[str, Any] | None = None,
) -> tuple[list[Transaction], YearResult]:
    """The transactions of contract year ``year_index`` and what they add up to. Pure: no data is read.

    ``stage`` is the year's stage; ``rates`` the measured rate of each of the contract's outcomes
    over the year (used in an outcomes stage); ``costs`` each subcontractor's recorded in-scope
    cost for the year in pence; ``gate`` the gate evaluated at the end of a fee year, recorded
    with it.
    """
    start, end = contract.term.year_start(year_index), contract.term.year_end(year_index)
    result = YearResult(start.year, start, end, stage.name, stage.kind, year_price(contract, year_index), 0)
    if isinstance(stage, FeeStage):
        paid, keep = result.price_pence, min(result.price_pence, to_pence(stage.fee_gbp_per_year))
        result.gate = gate
    else:
        paid, keep = _outcomes_income(contract, stage, result, rates)
    ledger = Ledger()
    _pay_prime(ledger, contract, result, paid, keep)
    remainder = _pay_vat(ledger, contract, result, paid - keep)
    costs = {s.code: costs.get(s.code, 0) for s in contract.subcontractors}
    share_rule = contract.payments.gain_loss_share
    if share_rule and stage.kind == "outcomes" and any(costs.values()):
        remainder = _share_gain_or_loss(ledger, contract, result, remainder, costs, share_rule)
    _pay_subcontractors(ledger, contract, result, remainder, costs)
    return ledger.transactions, result
