"""Where the money went: payment components that add up, and payments by kind of organisation."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from carecontract.payments import accounts
from carecontract.payments.book import PaymentBook
from carecontract.payments.components import PAID, WENT, by_group, payment_components, totals
from carecontract.payments.rules import pay_year
from carecontract.publish.money import money_by_kind
from carecontract.terms import load_terms
from tests.conftest import CANCER_TERMS


def _rows(transactions) -> list[dict]:
    return [
        {"txn": t.id, "period": t.period, "rule": t.rule, "account": p.account, "pence": p.pence}
        for t in transactions
        for p in t.postings
    ]


def test_components_add_up_and_explain_negatives(paid_store: Path) -> None:
    terms = load_terms(CANCER_TERMS)
    rows = PaymentBook(paid_store, terms).ledger_rows()
    comps = payment_components(rows, terms.contract)
    groups = by_group(comps)
    for year, sums in totals(comps).items():
        posted = [r for r in rows if r["period"] == year]
        # independent counts from the postings
        to_subs = sum(r["pence"] for r in posted if accounts.kind(r["account"]) == accounts.SUBCONTRACTOR)
        paid = -sum(r["pence"] for r in posted if accounts.kind(r["account"]) == accounts.COMMISSIONER)
        subs = [c for c in comps if c["year"] == year and c["group"] == "subcontractor"]
        assert groups[year]["subcontractor"] == to_subs == sum(c["pence"] for c in subs)
        assert sums[PAID] == sums[WENT] == paid
    assert all(c["note"] for c in comps if c["pence"] < 0), "a negative amount with no note"


def test_money_by_kind_adds_up_to_what_the_commissioners_paid(paid_store: Path) -> None:
    terms = load_terms(CANCER_TERMS)
    rows = PaymentBook(paid_store, terms).ledger_rows()
    kinds = money_by_kind(rows, terms.contract)
    for year in {r["period"] for r in rows}:
        paid = -sum(
            r["pence"] for r in rows if r["period"] == year and r["rule"] == "contract_payment" and r["pence"] < 0
        )
        assert sum(k["pence"] for k in kinds if k["year"] == year) == paid
    assert {"nhs_trust", "prime_consortium", "hmrc"} <= {k["kind"] for k in kinds}
    assert "not_stated" not in {k["kind"] for k in kinds}  # every party in the terms has a kind


@settings(max_examples=60, deadline=None)
@given(
    rates=st.lists(st.one_of(st.none(), st.floats(0, 1)), min_size=7, max_size=7),
    costs=st.lists(st.integers(0, 10**10), min_size=4, max_size=4),
)
def test_components_balance_for_any_rates_and_costs(rates: list, costs: list[int]) -> None:
    contract = load_terms(CANCER_TERMS).contract
    measures = [o.measure for o in contract.outcomes]
    subs = [s.code for s in contract.subcontractors]
    stage = contract.stages[-1]
    transactions, _ = pay_year(
        contract, 3, stage, dict(zip(measures, rates, strict=True)), dict(zip(subs, costs, strict=True))
    )
    rows = _rows(transactions)
    comps = payment_components(rows, contract)
    ((_, sums),) = totals(comps).items()
    paid = -sum(r["pence"] for r in rows if accounts.kind(r["account"]) == accounts.COMMISSIONER)
    assert sums[PAID] == sums[WENT] == paid
    into_prime = sum(r["pence"] for r in rows if r["rule"] == "contract_payment" and r["pence"] > 0)
    assert sum(k["pence"] for k in money_by_kind(rows, contract)) == into_prime
    assert all(c["note"] for c in comps if c["pence"] < 0)


def test_the_report_shows_components_that_add_up_and_explains_them(paid_store: Path) -> None:
    import re

    from carecontract.publish.report import gather_report, render_report

    data = gather_report(load_terms(CANCER_TERMS), paid_store, runs=100)
    html = render_report(data)
    section = html[html.index("<h2>Payments</h2>") : html.index("<h2>Viability</h2>")]
    years = {c["year"] for c in data.components}
    assert ">adds up</td>" in section and ">NO<" not in section
    assert section.count(">yes<") == len(years) > 0
    assert "Where the money went, by kind of organisation" in section and "NHS trusts" in section
    if any(c["pence"] < 0 for c in data.components):
        assert "(1)" in section and "negative:" in section  # each negative amount points to its note
    who = html[html.index("<h2>Who did what for whom</h2>") : html.index("<h2>Decision log</h2>")]
    assert re.search(r"subcontractors were paid £[\d.,]+m, \d+% of the £[\d.,]+m of care recorded", who)
