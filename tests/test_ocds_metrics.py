"""OCDS: outcome targets and observed results with the metrics extension, each payment transaction
linked to the milestone it pays, validated against the official schema with the extensions applied."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from carecontract.payments import accounts
from carecontract.payments.book import PaymentBook
from carecontract.publish.ocds import EXTENSIONS, release_package
from carecontract.terms import load_terms
from tests.conftest import CANCER_TERMS
from tests.ocds_validation import validation_errors


@pytest.fixture(scope="module")
def package(paid_store: Path) -> dict:
    return release_package(load_terms(CANCER_TERMS), paid_store)


def _implementation(package: dict) -> dict:
    return package["releases"][-1]["contracts"][0]["implementation"]


def test_the_package_declares_the_extensions_and_is_valid_with_them(package: dict, tmp_path: Path) -> None:
    assert package["extensions"] == list(EXTENSIONS)
    assert validation_errors(package, tmp_path) == []


BREAKAGES = {
    # an observation without its required id: invalid only under the metrics extension
    "observation": lambda p: _implementation(p)["metrics"][0]["observations"][0].pop("id"),
    # a milestone reference whose id is not a string: invalid only under the transaction milestones extension
    "transaction": lambda p: _implementation(p)["transactions"][0]["relatedImplementationMilestone"].update(id=7),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_the_extensions_are_really_applied(package: dict, tmp_path: Path, breakage: str) -> None:
    broken = copy.deepcopy(package)
    BREAKAGES[breakage](broken)
    assert validation_errors(broken, tmp_path)  # rejected with the extensions applied
    undeclared = {k: v for k, v in broken.items() if k != "extensions"}
    assert validation_errors(undeclared, tmp_path) == []  # core 1.1 alone lets it through


def test_each_transaction_pays_a_milestone_whose_value_is_the_years_net_payment(
    package: dict, paid_store: Path
) -> None:
    implementation = _implementation(package)
    payments = {m["id"]: m for m in implementation["milestones"] if m["type"] == "payment"}
    rows = PaymentBook(paid_store, load_terms(CANCER_TERMS)).ledger_rows()
    years = sorted({r["period"] for r in rows})
    assert sorted(payments) == [f"payment-{y}" for y in years]
    for txn in implementation["transactions"]:
        milestone = payments[txn["relatedImplementationMilestone"]["id"]]
        assert txn["relatedImplementationMilestone"]["title"] == milestone["title"]
        assert txn["id"].startswith(milestone["id"].removeprefix("payment-"))
    for year in years:
        net = -sum(
            r["pence"] for r in rows if r["period"] == year and accounts.kind(r["account"]) == accounts.COMMISSIONER
        )
        assert round(payments[f"payment-{year}"]["value"]["amount"] * 100) == net


def test_targets_and_observed_results(package: dict, paid_store: Path) -> None:
    terms = load_terms(CANCER_TERMS)
    contract = package["releases"][2]["contracts"][0]
    targets = {m["id"]: m["observations"][0]["measure"] for m in contract["agreedMetrics"]}
    assert targets == {o.measure: o.target for o in terms.contract.outcomes}
    observed = {m["id"]: m for m in _implementation(package)["metrics"]}
    versions = {v["period"]: v for v in PaymentBook(paid_store, terms).manifest()["versions"]}
    outcome_years = [y for y, v in versions.items() if v["result"]["kind"] == "outcomes"]
    assert outcome_years
    for year in outcome_years:
        for measure, rate in versions[year]["result"]["rates"].items():
            (obs,) = [o for o in observed[measure]["observations"] if o["dimensions"]["contractYear"] == str(year)]
            assert obs["relatedImplementationMilestone"]["id"] == f"payment-{year}"
            assert obs.get("measure") == (
                None if rate is None else pytest.approx(rate, abs=1e-6)
            )  # published to 6 places


def test_payments_by_kind_add_up_to_what_the_commissioners_paid(package: dict, paid_store: Path) -> None:
    by_kind = {m["id"]: m for m in _implementation(package)["metrics"]}["payments-by-organisation-kind"]
    rows = PaymentBook(paid_store, load_terms(CANCER_TERMS)).ledger_rows()
    for year in {r["period"] for r in rows}:
        paid = -sum(
            r["pence"] for r in rows if r["period"] == year and r["rule"] == "contract_payment" and r["pence"] < 0
        )
        published = [o for o in by_kind["observations"] if o["dimensions"]["contractYear"] == str(year)]
        assert round(sum(o["value"]["amount"] for o in published) * 100) == pytest.approx(paid, abs=len(published))
    kinds = {o["dimensions"]["organisationKind"] for o in by_kind["observations"]}
    assert {"nhs_trust", "prime_consortium", "hmrc"} <= kinds
