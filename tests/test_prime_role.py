"""The prime contractor is a role of its own: it sees the outcomes its payment depends on and its
subcontractors' figures, never patient-level rows, and nothing of a contract it is not the prime of."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from carecontract.payments import accounts
from carecontract.payments.book import PaymentBook
from carecontract.service import Principal, Tokens, create_app
from carecontract.service.access import TokenFileError
from carecontract.terms import load_terms
from tests.conftest import CANCER_TERMS

NAME = "staffordshire-cancer-care"
HEADERS = {
    "prime": {"Authorization": "Bearer t-prime"},
    "other": {"Authorization": "Bearer t-other-prime"},
    "old": {"Authorization": "Bearer t-prime-as-provider"},
}


@pytest.fixture(scope="module")
def client(paid_store: Path) -> TestClient:
    tokens = Tokens(
        {
            "t-prime": Principal("prime", "PRIME1"),
            "t-other-prime": Principal("prime", "UCP"),  # UnitingCare's prime: not this contract's
            "t-prime-as-provider": Principal("provider", "PRIME1"),  # what a prime's token was before
        }
    )
    return TestClient(create_app(paid_store, [load_terms(CANCER_TERMS)], tokens, stress_runs=50))


def _get(client: TestClient, path: str, who: str, **params):
    return client.get(f"/api/contracts/{NAME}/{path}", headers=HEADERS[who], params=params)


def test_the_prime_sees_the_contract_wide_outcomes_a_provider_token_did_not(client: TestClient) -> None:
    assert _get(client, "measures", "old").json() == []  # the old plain provider token: empty
    rows = _get(client, "measures", "prime").json()
    outcomes = {o.measure for o in load_terms(CANCER_TERMS).contract.outcomes}
    assert outcomes <= {r["measure"] for r in rows}
    assert all("provider" not in r for r in rows)  # contract-wide: what the payment is computed on


def test_the_prime_sees_its_subcontractors_and_no_other_provider(client: TestClient) -> None:
    subs = {s.code for s in load_terms(CANCER_TERMS).contract.subcontractors}
    rows = _get(client, "measures", "prime", by="provider").json()
    seen = {r["provider"] for r in rows}
    assert seen and seen <= subs and len(seen) >= 2


def test_the_prime_view_matches_the_closed_book(client: TestClient, paid_store: Path) -> None:
    terms = load_terms(CANCER_TERMS)
    body = _get(client, "prime", "prime").json()
    book = PaymentBook(paid_store, terms)
    rows = book.ledger_rows()
    assert [y["year"] for y in body["years"]] == sorted({r["period"] for r in rows})
    for year in body["years"]:
        # each subcontractor's payment, counted from the ledger postings themselves
        for sub in year["subcontractors"]:
            posted = sum(
                r["pence"]
                for r in rows
                if r["period"] == year["year"] and r["account"] == accounts.subcontractor(sub["code"])
            )
            assert round(sub["paid_gbp"] * 100) == posted
        if year["kind"] == "outcomes":
            assert {o["measure"] for o in year["outcomes"]} == {o.measure for o in terms.contract.outcomes}
            assert all(o["clause"] for o in year["outcomes"])
            assert year["achievement"] is not None and 0 <= year["achievement"] <= 1


def test_the_prime_of_another_contract_sees_nothing_of_this_one(client: TestClient) -> None:
    assert _get(client, "prime", "other").status_code == 403
    assert _get(client, "measures", "other").json() == []
    assert _get(client, "accountability", "other").json() == []
    payments = _get(client, "payments", "other").json()
    assert payments["by_year_and_account"] == [] and "components" not in payments


def test_the_prime_gets_no_patient_level_rows(client: TestClient) -> None:
    for path in ("/api/events", "/api/quarantine"):
        assert client.get(path, headers=HEADERS["prime"]).status_code == 403


def test_the_prime_sees_every_account_it_pays(client: TestClient) -> None:
    body = _get(client, "payments", "prime").json()
    kinds = {accounts.kind(r["account"]) for r in body["by_year_and_account"]}
    assert {accounts.SUBCONTRACTOR, accounts.COMMISSIONER, accounts.MANAGEMENT} <= kinds
    assert body["component_table"]["balanced"] and all(body["component_table"]["balanced"].values())


def test_a_new_tokens_file_gives_the_prime_a_prime_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    tokens = Tokens.load_or_create(path, [load_terms(CANCER_TERMS)])
    principals = {p for _, p in tokens.listing()}
    assert Principal("prime", "PRIME1") in principals
    assert Principal("provider", "PRIME1") not in principals
    path.write_text(json.dumps({"t": {"role": "prime", "organisation": None}}))
    with pytest.raises(TokenFileError, match="needs an organisation"):
        Tokens.load(path)


def test_the_prime_compares_its_subcontractors_fairly_and_no_other_provider(client: TestClient) -> None:
    subs = {s.code for s in load_terms(CANCER_TERMS).contract.subcontractors}
    assert "RJE" in subs and "RXW" not in subs
    rows = _get(client, "adjusted", "prime", measure="early_stage").json()
    seen = {r["provider"] for r in rows}
    assert seen and seen <= subs  # the synthetic economy's other acute trusts are not its subcontractors
    assert _get(client, "adjusted", "other", measure="early_stage").json() == []
    assert _get(client, "spc", "prime", measure="early_stage").status_code == 200  # the contract's chart
    assert _get(client, "spc", "prime", measure="early_stage", provider="RJE").status_code == 200
    assert _get(client, "spc", "prime", measure="early_stage", provider="RXW").status_code == 403  # not its own
    assert _get(client, "spc", "other", measure="early_stage").status_code == 403
