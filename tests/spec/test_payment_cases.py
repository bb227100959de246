"""Every worked payment example in ``payments/*.yaml``, on every engine.

Each case's events are ingested into a store of their own and its contract (a terms file under
``payments/contracts/``) is paid for the years it names, with the queries on the engine under
test. Each account's net balance for a year must match to the penny; so must the stage and the
outcome achievement where the case gives them.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from carecontract.payments.pay import pay_contract
from carecontract.terms import load_terms
from tests.spec.cases import SPEC, Case, load_cases, store_for

CASES = load_cases(SPEC / "payments", {"terms", "set", "years", "expect"})
YEAR_KEYS = {"stage", "achievement", "accounts"}


def pence(pounds: float | int | str) -> int:
    """Pounds as written in a case (``-242_250.00``) to whole pence, exactly."""
    amount = Decimal(str(pounds)) * 100
    assert amount == amount.to_integral_value(), f"{pounds} is not a whole number of pence"
    return int(amount)


@pytest.mark.parametrize("case", CASES)
def test_payment_case(case: Case, engine: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    store = store_for(case, tmp_path_factory)
    terms = load_terms(case.file.parent / case.data["terms"], case.data.get("set", []))
    ledger, results = pay_contract(terms.contract, store, case.data["years"], engine=engine)
    assert ledger.balanced
    by_year = {r.year: r for r in results}
    for year, expected in case.data["expect"].items():
        assert set(expected) <= YEAR_KEYS, f"{case.id}: unknown keys {sorted(set(expected) - YEAR_KEYS)}"
        balances = {account: p for account, p in ledger.balances(year).items() if p}
        wanted = {account: pence(pounds) for account, pounds in expected["accounts"].items()}
        assert balances == wanted, f"{case.id}: {year}"
        if "stage" in expected:
            assert by_year[year].stage == expected["stage"], f"{case.id}: {year}"
        if "achievement" in expected:
            assert by_year[year].achievement == pytest.approx(expected["achievement"], abs=1e-12)
