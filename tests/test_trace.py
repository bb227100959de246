"""explain-payment: every amount traced to its formula, parameters (with value and clause), measures
(numerator/denominator) and the as-at it was read on — and equal to what the ledger posted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carecontract.cli import app
from carecontract.payments import accounts
from carecontract.payments.book import PaymentBook
from carecontract.payments.trace import explain_payment
from carecontract.terms import load_terms
from carecontract.terms.loader import TermsError
from tests.conftest import CANCER_TERMS


@pytest.fixture(scope="module")
def trace(paid_store: Path) -> dict:
    return explain_payment(load_terms(CANCER_TERMS), paid_store, [2017, 2018, 2019])


def _step(year: dict, name: str) -> dict:
    return next(s for s in year["steps"] if s["step"] == name)


def test_each_traced_amount_is_what_the_ledger_posted(trace: dict, paid_store: Path) -> None:
    rows = PaymentBook(paid_store, load_terms(CANCER_TERMS)).ledger_rows()
    prime = "PRIME1"
    for year in trace["years"]:
        posted = [r for r in rows if r["period"] == year["year"]]

        def total(account: str, rule: str | None = None, posted: list = posted) -> int:
            return sum(r["pence"] for r in posted if r["account"] == account and rule in (None, r["rule"]))

        assert round(_step(year, "vat")["gbp"] * 100) == total(accounts.HMRC_VAT)
        fee_rule = "management_fee" if year["kind"] == "outcomes" else "stage1_fee"
        assert round(_step(year, "management")["gbp"] * 100) == total(accounts.management(prime), fee_rule)
        paid = sum(-r["pence"] for r in posted if r["rule"] == "contract_payment" and r["pence"] < 0)
        assert round(_step(year, "commissioners' shares")["gbp"] * 100) == paid
        subs = _step(year, "subcontractors")
        for code, line in subs["inputs"].items():
            assert round(line["paid_gbp"] * 100) == total(accounts.subcontractor(code))


def test_the_outcomes_year_shows_each_measure_with_its_numerator_and_clause(trace: dict) -> None:
    outcomes_years = [y for y in trace["years"] if y["kind"] == "outcomes"]
    assert outcomes_years
    for year in outcomes_years:
        measures = _step(year, "achievement")["inputs"]["outcomes"]
        assert {m["clause"] for m in measures} >= {"Sch 4, 1.1", "Sch 4, 1.7"}
        for m in measures:
            if m["rate"] is not None and m["measure"] != "patient_experience" and m["basis"] == "raw":
                assert m["rate"] == pytest.approx(m["numerator"] / m["denominator"])
        weighted = sum(m["weighted"] for m in measures)
        assert weighted == pytest.approx(_step(year, "achievement")["inputs"]["weighted_achievement"])
        pot, released = _step(year, "at_risk_pot")["gbp"], _step(year, "released_pot")["gbp"]
        assert 0 <= released <= pot


def test_parameters_carry_their_value_and_clause(trace: dict) -> None:
    year = trace["years"][-1]
    vat = _step(year, "vat")["inputs"]["vat_rate"]
    assert vat["value"] == 0.2 and vat["clause"] == "Sch 5, 6.1" and vat["source"] == "terms"
    assert _step(year, "vat")["clause"] == "Sch 5, 6.1"
    assert trace["store_version"] and "as_at" in trace


def test_a_what_if_is_named_as_the_source_of_its_value(paid_store: Path) -> None:
    terms = load_terms(CANCER_TERMS, ["vat_rate=0.25"])
    year = explain_payment(terms, paid_store, [2019])["years"][0]
    vat = _step(year, "vat")["inputs"]["vat_rate"]
    assert vat["value"] == 0.25 and vat["clause"] is None and vat["source"] == "--set vat_rate=0.25"


def test_cli_json_and_a_year_the_contract_does_not_have(paid_store: Path) -> None:
    runner = CliRunner()
    args = ["explain-payment", str(CANCER_TERMS), "--store", str(paid_store), "--year", "2018"]
    out = runner.invoke(app, [*args, "--json"])
    assert out.exit_code == 0, out.output
    assert [y["year"] for y in json.loads(out.stdout)["years"]] == [2018]
    text = runner.invoke(app, args)
    assert text.exit_code == 0 and "Sch 5, 6.1" in text.output
    bad = runner.invoke(app, ["explain-payment", str(CANCER_TERMS), "--store", str(paid_store), "--year", "2050"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_a_clause_must_be_short_text(tmp_path: Path) -> None:
    text = CANCER_TERMS.read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace('vat_rate: {2017: 0.20, clause: "Sch 5, 6.1"}', "vat_rate: {2017: 0.20, clause: 7}"))
    with pytest.raises(TermsError, match="clause must be a short text"):
        load_terms(bad)
    bad.write_text(text.replace('clause: "Sch 4, 1.1"', f'clause: "{"x" * 81}"'))
    with pytest.raises(TermsError, match="clause"):
        load_terms(bad)


def test_clauses_and_kinds_do_not_change_the_fingerprint(tmp_path: Path) -> None:
    bare = tmp_path / "bare.yaml"
    text = CANCER_TERMS.read_text()
    for clause in ('clause: "Sch 5, 6.1"', 'clause: "Sch 4, 1.1"'):
        text = text.replace(", " + clause, "")
    text = text.replace("kind: voluntary_hospice, ", "")
    assert text.count("clause:") < CANCER_TERMS.read_text().count("clause:") and "voluntary_hospice" not in text
    bare.write_text(text)
    assert load_terms(bare).fingerprint == load_terms(CANCER_TERMS).fingerprint


def test_the_notebook_api_explains_and_splits_by_kind(paid_store: Path) -> None:
    import carecontract as cc

    traced = cc.explain_payment(CANCER_TERMS, paid_store, [2019])
    assert traced["years"][0]["year"] == 2019
    kinds = cc.money_by_kind(CANCER_TERMS, paid_store)
    assert {"year", "kind", "gbp", "share_of_value"} <= set(kinds.columns)


def test_a_store_empty_at_the_as_at_is_one_line(paid_store: Path) -> None:
    args = ["explain-payment", str(CANCER_TERMS), "--store", str(paid_store), "--year", "2017", "--as-at", "2020-01-01"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert "held no submission then" in out.output  # 2020-01-01 is before the store's first submission
