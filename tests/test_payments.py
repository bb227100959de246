"""Payments: a double-entry ledger in pence that always balances; idempotent, versioned closes."""

from __future__ import annotations

import multiprocessing
import os
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecontract.payments import book as book_module
from carecontract.payments.book import PaymentBook
from carecontract.payments.ledger import Ledger, Posting, Transaction, UnbalancedTransaction, split_pence
from carecontract.payments.pay import pay_contract
from carecontract.payments.rules import achievement, at_risk_release, portion, weighted_achievement
from carecontract.records.ingest import ingest
from carecontract.records.pseudonymise import PseudonymKey
from carecontract.terms import load_terms
from carecontract.terms.model import Outcome

ROOT = Path(__file__).parent.parent
CANCER = ROOT / "contracts" / "staffordshire-cancer.yaml"
UNITINGCARE = ROOT / "contracts" / "unitingcare.yaml"


# -- the ledger ---------------------------------------------------------------------------------
def test_an_unbalanced_transaction_is_refused() -> None:
    with pytest.raises(UnbalancedTransaction, match="off by -1 pence"):
        Transaction("t", 2020, "r", "n", (Posting("a", -100), Posting("b", 99)))
    with pytest.raises(TypeError, match="whole pence"):
        Posting("a", 1.5)  # type: ignore[arg-type]


weights = st.dictionaries(st.text("abcdefgh", min_size=1, max_size=3), st.floats(0.001, 1000), min_size=1, max_size=8)


@given(st.integers(-(10**12), 10**12), weights)
def test_split_pence_loses_no_penny_and_is_fair(total: int, parts: dict[str, float]) -> None:
    split = split_pence(total, parts)
    assert sum(split.values()) == total
    weight_sum = sum(Fraction(str(w)) for w in parts.values())
    for name, w in parts.items():
        exact = total * Fraction(str(w)) / weight_sum
        assert abs(split[name] - exact) < 1  # within a penny of the exact share


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.sampled_from("wxyz"), st.integers(0, 10**9)), max_size=40))
def test_any_sequence_of_transfers_balances(transfers: list[tuple[str, str, int]]) -> None:
    ledger = Ledger()
    for i, (payer, payee, pence) in enumerate(transfers):
        ledger.transfer(str(i), 2020, "r", "n", payer, payee, pence)
    assert ledger.balanced and ledger.sum_pence() == 0
    assert sum(ledger.balances().values()) == 0


# -- outcome payment ----------------------------------------------------------------------------
@given(st.floats(0, 1), st.floats(0, 1), st.floats(0.5, 0.95), st.floats(0.0, 0.45))
def test_achievement_is_monotone_and_within_bounds(r1: float, r2: float, target: float, gap: float) -> None:
    threshold = target - gap if gap else None
    up = Outcome(measure="cwt_62", target=target, weight=1.0, threshold=threshold)
    low, high = sorted((r1, r2))
    assert 0.0 <= achievement(up, low) <= achievement(up, high) <= 1.0
    down = Outcome(measure="emergency_presentation", target=target - gap, weight=1.0, threshold=target if gap else None)
    assert 0.0 <= achievement(down, high) <= achievement(down, low) <= 1.0


@given(st.lists(st.floats(0, 1), min_size=3, max_size=3), st.integers(0, 10**10), st.floats(0, 2))
def test_released_outcome_payment_is_within_its_cap(rates: list[float], pot: int, cap: float) -> None:
    outcomes = [
        Outcome(measure=m, target=0.8, weight=w, threshold=0.5)
        for m, w in (("fds_28", 0.5), ("cwt_31", 0.3), ("cwt_62", 0.2))
    ]
    a = weighted_achievement(outcomes, dict(zip(("fds_28", "cwt_31", "cwt_62"), rates, strict=True)))
    assert 0 <= a <= 1 + 1e-12
    released = at_risk_release(pot, a, cap)
    assert 0 <= released <= portion(pot, cap)


# -- the contract over a synthetic economy ----------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from carecontract.synth.economy import generate
    from carecontract.synth.writer import write_economy

    out = tmp_path_factory.mktemp("pay")
    files = write_economy(generate(60_000, 4, seed=4, start=date(2017, 4, 1)), out / "data", "parquet")
    ingest(files, out / "store", as_of=date(2026, 1, 1), key=PseudonymKey(b"pay"))
    return out / "store"


def test_the_staffordshire_ledger_balances_and_commissioners_pay_their_shares(store: Path) -> None:
    terms = load_terms(CANCER)
    ledger, results = pay_contract(terms.contract, store, [2017, 2018, 2019, 2020])
    assert ledger.balanced
    assert [r.kind for r in results] == ["fee", "fee", "outcomes", "outcomes"]  # gate not passed: 2 fee years
    shares = {f"commissioner:{c.code}": c.share for c in terms.contract.commissioners}
    for r in results:
        balances = ledger.balances(r.year)
        paid = -sum(balances[a] for a in shares)
        assert paid == r.paid_by_commissioners_pence
        for account, share in shares.items():
            assert abs(-balances[account] - share * paid) < 1  # each pays its share, to the penny
        assert balances["prime:PRIME1"] == 0  # the prime passes everything on or keeps it as management
        kept = balances.get("management:PRIME1", 0)
        assert kept + r.vat_pence + sum(r.to_subcontractors_pence.values()) == paid
        if r.kind == "outcomes":
            assert r.released_pence <= r.at_risk_pence
            assert r.variance_pence is not None  # the contract has a gain/loss share
            assert kept == r.management_pence + (r.variance_pence - r.shared_with_commissioners_pence)


def test_more_achievement_releases_more_money(store: Path) -> None:
    easy = load_terms(CANCER, ["outcomes.0.target=0.0", "outcomes.0.threshold=null"])  # cwt_62 always met
    base = load_terms(CANCER)
    _, easy_results = pay_contract(easy.contract, store, [2019])
    _, base_results = pay_contract(base.contract, store, [2019])
    assert easy_results[0].achievement >= base_results[0].achievement
    assert easy_results[0].released_pence >= base_results[0].released_pence


def test_gain_loss_share_is_split_and_capped(store: Path) -> None:
    _, shared = pay_contract(load_terms(CANCER).contract, store, [2019])
    r = shared[0]
    assert r.shared_with_commissioners_pence == pytest.approx(r.variance_pence * 0.5, abs=1)
    assert sum(r.to_subcontractors_pence.values()) == r.recorded_cost_pence  # subcontractors paid their costs
    ledger, capped = pay_contract(load_terms(CANCER, ["payments.gain_loss_share.cap_gbp=1"]).contract, store, [2019])
    assert abs(capped[0].shared_with_commissioners_pence) <= 100 and ledger.balanced
    _, none = pay_contract(load_terms(CANCER, ["payments.gain_loss_share=null"]).contract, store, [2019])
    assert none[0].variance_pence is None and none[0].shared_with_commissioners_pence == 0


def test_demand_growth_is_paid_only_when_the_terms_fund_it(store: Path) -> None:
    _, fixed = pay_contract(load_terms(CANCER, ["demand_growth=0.05"]).contract, store, [2019])
    funded_terms = load_terms(CANCER, ["demand_growth=0.05", "payments.fund_demand_growth=true"])
    _, funded = pay_contract(funded_terms.contract, store, [2019])
    assert fixed[0].price_pence == 68_700_000_00  # fixed price: growth unfunded, as in the seeds
    assert funded[0].price_pence == round(68_700_000_00 * 1.05**2)  # two uplifts by 2019, the third year


def test_irrecoverable_vat_goes_to_hmrc(store: Path) -> None:
    _, with_vat = pay_contract(load_terms(CANCER).contract, store, [2017])
    _, no_vat = pay_contract(load_terms(CANCER, ["payments.vat.PRIME1=recoverable"]).contract, store, [2017])
    rate = 0.2
    subs = sum(with_vat[0].to_subcontractors_pence.values())
    assert with_vat[0].vat_pence == pytest.approx(subs * rate, abs=2)
    assert no_vat[0].vat_pence == 0


def test_closing_is_idempotent_and_changes_are_versioned(store: Path, tmp_path: Path) -> None:
    import shutil

    local = tmp_path / "store"
    shutil.copytree(store, local)
    terms = load_terms(CANCER)
    book = PaymentBook(local, terms)
    first = book.close([2017, 2018])
    assert [e["status"] for e in first] == ["new", "new"]
    files = sorted(p.name for p in book.root.glob("*.parquet"))
    again = book.close([2017, 2018])
    assert [e["status"] for e in again] == ["unchanged", "unchanged"]
    assert sorted(p.name for p in book.root.glob("*.parquet")) == files
    # new data arrives: the period is recomputed as a new version with its diff
    from tests.conftest import VALID_ROW, write_csv

    late = {
        **VALID_ROW,
        "record_id": "late-1",
        "event_type": "treatment",
        "modality": "surgery",
        "provider_code": "RJE",
        "cost_gbp": "9000",
        "event_date": "2017-06-01",
        "referral_route": "",
    }
    ingest([write_csv(tmp_path / "late.csv", [late])], local, as_of=date(2026, 1, 1), key=PseudonymKey(b"pay"))
    changed = PaymentBook(local, terms).close([2017])
    assert changed[0]["version"] == 2 and changed[0]["status"] in ("changed", "recomputed, same payments")
    assert len([v for v in book.manifest()["versions"] if v["period"] == 2017]) == 2


def test_a_what_if_never_touches_the_official_book(store: Path, tmp_path: Path) -> None:
    import shutil

    local = tmp_path / "store"
    shutil.copytree(store, local)
    official = PaymentBook(local, load_terms(CANCER))
    official.close([2017])
    what_if = PaymentBook(local, load_terms(CANCER, ["management_share=0.4"]))
    what_if.close([2017])
    assert what_if.root != official.root
    assert [v["version"] for v in official.manifest()["versions"]] == [1]


def _close_then_die(store: str) -> None:
    def die(*args: object, **kwargs: object) -> None:
        os._exit(9)

    book_module.write_json_atomic = die  # the kill lands after the ledger file, before the commit
    PaymentBook(store, load_terms(CANCER)).close([2018])


def test_a_killed_close_leaves_the_book_as_it_was(store: Path, tmp_path: Path) -> None:
    import shutil

    local = tmp_path / "store"
    shutil.copytree(store, local)
    book = PaymentBook(local, load_terms(CANCER))
    book.close([2017])
    before = book.manifest_path.read_bytes()
    proc = multiprocessing.get_context("fork").Process(target=_close_then_die, args=(str(local),))
    proc.start()
    proc.join(120)
    assert proc.exitcode == 9
    assert book.manifest_path.read_bytes() == before
    assert any(p.name.startswith("2018") for p in book.root.glob("*.parquet"))  # written, not committed
    assert book.close([2018])[0]["status"] == "new"  # the next close sweeps it and commits its own
    assert sorted(p.name for p in book.root.glob("*.parquet")) == ["2017-v1.parquet", "2018-v1.parquet"]


@settings(deadline=None, max_examples=10)
@given(st.floats(0.0, 0.5), st.floats(0.0, 0.4))
def test_unitingcare_ledger_balances_for_any_management_share_and_vat(store: Path, share: float, vat: float) -> None:
    terms = load_terms(UNITINGCARE, [f"management_share={share}", f"vat_rate={vat}"])
    ledger, _ = pay_contract(terms.contract, store, [2015])
    assert ledger.balanced and ledger.sum_pence() == 0


def test_pay_from_the_command_line(store: Path, tmp_path: Path) -> None:
    import json
    import shutil
    import subprocess
    import sys

    local = tmp_path / "store"
    shutil.copytree(store, local)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "carecontract.cli", *args], capture_output=True, text=True)

    out = json.loads(cli("pay", str(CANCER), "--store", str(local), "--json").stdout)
    assert set(out) >= {"entries", "balanced", "sum_pence", "by_account", "periods", "terms"}
    assert out["balanced"] is True and out["sum_pence"] == 0
    assert [p["period"] for p in out["periods"]] == [2017, 2018, 2019, 2020]  # only the years the data covers
    assert sum(out["by_account"].values()) == 0
    again = json.loads(cli("pay", str(CANCER), "--store", str(local), "--period", "2018", "--json").stdout)
    assert again["periods"][0]["status"] == "unchanged"
    none = cli("pay", str(UNITINGCARE), "--store", str(local))  # 2015-2019 contract; data from 2017 on
    assert none.returncode == 0
    missing = cli("pay", str(ROOT / "contracts" / "staffordshire-eol.yaml"), "--store", str(local), "--period", "2030")
    assert missing.returncode == 2 and "no contract year starting in [2030]" in missing.stderr


def test_one_pass_yearly_costs_equal_the_per_year_query(paid_store: Path) -> None:
    """The pay run costs every year in one scan; each year must equal the per-year query, to the penny."""
    from carecontract.measures.compute import events_table
    from carecontract.payments.costs import costs_in_scope, subcontractor_costs, yearly_costs
    from carecontract.records.store import Store
    from tests.conftest import CANCER_TERMS

    contract = load_terms(CANCER_TERMS).contract
    events = events_table(Store(paid_store))
    cube = yearly_costs(events, contract)
    codes = [s.code for s in contract.subcontractors]
    for i, start in enumerate(contract.contract_years()[:4]):
        end = contract.term.year_start(i + 1) - timedelta(days=1)
        for sites in (contract.scope_at(start), None, ["lung"]):
            expected = subcontractor_costs(events, codes, start, end, sites)
            assert costs_in_scope(cube, start.year, codes, sites) == expected
    assert sum(costs_in_scope(cube, 2018, codes, None).values()) > 0


def test_pay_year_is_pure_rates_and_costs_in_transactions_out() -> None:
    from carecontract.payments.rules import pay_year

    contract = load_terms(CANCER).contract
    stage = contract.stages[-1]
    rates = {o.measure: 0.8 for o in contract.outcomes}
    costs = {s.code: (i + 1) * 1_000_000_00 for i, s in enumerate(contract.subcontractors)}
    transactions, result = pay_year(contract, 2, stage, rates, costs)
    assert (transactions, result) == pay_year(contract, 2, stage, rates, costs)  # same inputs, same entries
    ledger = Ledger(list(transactions))
    assert ledger.balanced and result.kind == "outcomes" and result.rates == rates
    cap = contract.payments.outcome_payment.cap_share
    assert result.released_pence == at_risk_release(result.at_risk_pence, result.achievement, cap)
    assert sum(result.to_subcontractors_pence.values()) == sum(costs.values())  # gain/loss share: paid their costs
    assert result.paid_by_commissioners_pence == -sum(
        v for a, v in ledger.balances().items() if a.startswith("commissioner:")
    )


def test_a_run_measures_each_year_once_across_pay_runs(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from carecontract import run as run_module
    from carecontract.run import Run

    calls: list[object] = []
    real = run_module.compute_measures

    def counted(*args: object, **kwargs: object) -> list[dict]:
        calls.append(args[1:3])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    contract = load_terms(CANCER).contract
    expected = pay_contract(contract, store, [2017, 2018, 2019])
    monkeypatch.setattr(run_module, "compute_measures", counted)
    run = Run(store)
    ledger, results = pay_contract(contract, run, [2017, 2018, 2019])
    assert ledger.transactions == expected[0].transactions and results == expected[1]
    assert len(calls) == len(set(calls)) == 3  # two gate years, one outcomes year: each period measured once
    pay_contract(contract, run, [2017, 2018, 2019])
    assert len(calls) == 3  # the same run: nothing measured again
