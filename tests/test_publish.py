"""OCDS publication: valid against the official schema, money traced to the ledger, decisions included."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carecontract.cli import app
from carecontract.payments.book import PaymentBook
from carecontract.publish.decisions import DecisionLog
from carecontract.publish.ocds import PublishError, published_head, release_package
from carecontract.terms import load_terms
from tests.ocds_validation import validation_errors

CANCER = Path(__file__).parent.parent / "contracts" / "staffordshire-cancer.yaml"


@pytest.fixture(scope="module")
def store(paid_store: Path) -> Path:
    return paid_store


@pytest.fixture
def log(tmp_path: Path) -> DecisionLog:
    log = DecisionLog(tmp_path / "decisions.jsonl")
    attachment = tmp_path / "business-case.txt"
    attachment.write_text("Full business case")
    log.append("business_case", "Business case approved by the governing bodies", "c", "fp", attach=attachment)
    log.append("consultation", "Public consultation, 12 weeks", "c", "fp")
    log.append("variation", "Scope extended to all tumour sites from year 5", "c", "fp")
    return log


def test_the_release_package_is_valid_against_the_official_schema(
    store: Path, log: DecisionLog, tmp_path: Path
) -> None:
    package = release_package(load_terms(CANCER), store, decision_log=str(log.path))
    assert validation_errors(package, tmp_path) == []
    assert [r["tag"] for r in package["releases"]] == [
        ["planning"],
        ["tender"],
        ["award", "contract"],
        ["implementation"],
    ]


BREAKAGES = {
    "ocid": lambda p: p["releases"][0].pop("ocid"),
    "signed-in-secret": lambda p: p["releases"][1]["tender"].update(status="signed-in-secret"),  # a closed codelist
    "amount": lambda p: p["releases"][2]["awards"][0].update(value={"amount": "lots", "currency": "GBP"}),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_the_validator_rejects_what_the_schema_forbids(store: Path, tmp_path: Path, breakage: str) -> None:
    """The check above can fail: the same package, broken, is rejected and the error names the field."""
    broken = copy.deepcopy(release_package(load_terms(CANCER), store))
    BREAKAGES[breakage](broken)
    errors = validation_errors(broken, tmp_path)
    assert errors and breakage in json.dumps(errors)


def test_transactions_are_the_ledger_transfers_between_organisations(store: Path) -> None:
    terms = load_terms(CANCER)
    package = release_package(terms, store)
    implementation = package["releases"][-1]["contracts"][0]["implementation"]
    transactions = implementation["transactions"]
    ledger = PaymentBook(store, terms).ledger_rows()
    paid_in = sum(-r["pence"] for r in ledger if r["account"].startswith("commissioner:") and r["pence"] < 0)
    commissioners = {f"carecontract-{x.code}" for x in terms.contract.commissioners}
    from_commissioners = sum(t["value"]["amount"] for t in transactions if t["payer"]["id"] in commissioners)
    assert from_commissioners == pytest.approx(paid_in / 100, abs=0.01)
    to_subcontractors = {t["payee"]["name"] for t in transactions if t["source"].endswith(":subcontract_payment")}
    assert to_subcontractors == {s.name for s in terms.contract.subcontractors}
    assert not any("management" in t["payee"]["id"] for t in transactions)  # internal moves are not payments
    party_ids = {p["id"] for p in package["releases"][-1]["parties"]}
    assert all(t["payer"]["id"] in party_ids and t["payee"]["id"] in party_ids for t in transactions)


def test_gate_milestones_say_whether_the_gate_was_met(store: Path) -> None:
    package = release_package(load_terms(CANCER), store)
    milestones = package["releases"][-1]["contracts"][0]["implementation"]["milestones"]
    (milestone,) = [m for m in milestones if m["type"] == "assessment"]  # the others: one payment per year
    # the synthetic economy misses the patient-experience threshold, and both fee years are closed
    assert milestone["status"] == "notMet" and "patient_experience" in milestone["description"]
    assert milestone["dueDate"].startswith("2019-04-01")


def test_decisions_are_published_and_anchored(store: Path, log: DecisionLog) -> None:
    package = release_package(load_terms(CANCER), store, decision_log=str(log.path))
    planning = package["releases"][0]["planning"]
    assert [d["documentType"] for d in planning["documents"]] == ["needsAssessment", "hearingNotice"]
    assert "sha256" in planning["documents"][0]["description"]
    contract = package["releases"][2]["contracts"][0]
    assert [a["rationale"] for a in contract["amendments"]] == ["Scope extended to all tumour sites from year 5"]
    assert package["decisionLog"] == {"records": 3, "headHash": log.records()[-1]["hash"], "verified": True}


def test_without_a_business_case_the_package_says_so(store: Path) -> None:
    package = release_package(load_terms(CANCER), store)
    assert "No business case" in package["releases"][0]["planning"]["rationale"]
    assert "decisionLog" not in package


def test_a_tampered_log_is_not_published(store: Path, log: DecisionLog) -> None:
    log.path.write_text(log.path.read_text().replace("12 weeks", "2 weeks"))
    with pytest.raises(PublishError, match="fails verification"):
        release_package(load_terms(CANCER), store, decision_log=str(log.path))


def test_nothing_patient_level_is_published(store: Path, log: DecisionLog) -> None:
    text = json.dumps(release_package(load_terms(CANCER), store, decision_log=str(log.path)))
    hashes = set(re.findall(r"\b[0-9a-f]{64}\b", text))
    # the only 64-hex strings are the decision log's own hashes, never a patient pseudonym
    allowed = {r["hash"] for r in log.records()} | {r["attachment"]["sha256"] for r in log.records() if r["attachment"]}
    assert hashes <= allowed
    assert not re.search(r"\b9\d{9}\b", text)


def test_publish_cli(store: Path, log: DecisionLog, tmp_path: Path) -> None:
    out = tmp_path / "release.json"
    result = CliRunner().invoke(
        app, ["publish", str(CANCER), "--store", str(store), "--ocds", str(out), "--log", str(log.path)]
    )
    assert result.exit_code == 0, result.output
    assert "4 releases" in result.output and validation_errors(json.loads(out.read_text()), tmp_path) == []
    log.path.write_text(log.path.read_text().replace("12 weeks", "2 weeks"))
    result = CliRunner().invoke(
        app, ["publish", str(CANCER), "--store", str(store), "--ocds", str(tmp_path / "x"), "--log", str(log.path)]
    )
    assert result.exit_code == 2 and "fails verification" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_a_log_that_does_not_extend_the_published_head_is_refused(
    store: Path, log: DecisionLog, tmp_path: Path
) -> None:
    from tests.test_decisions import _rewrite_history

    first = release_package(load_terms(CANCER), store, decision_log=str(log.path))
    published = first["decisionLog"]["headHash"]
    (tmp_path / "release.json").write_text(json.dumps(first))
    assert published_head(tmp_path / "release.json") == published
    log.append("gate", "Gate passed", "c", "fp")  # history that extends the published head: fine
    later = release_package(load_terms(CANCER), store, decision_log=str(log.path), expect_head=published)
    assert later["decisionLog"]["records"] == first["decisionLog"]["records"] + 1
    _rewrite_history(log)  # history rewritten, head file too: verifies on its own
    assert log.verify() == []
    with pytest.raises(PublishError, match="does not lead to the published head"):
        release_package(load_terms(CANCER), store, decision_log=str(log.path), expect_head=published)
    with pytest.raises(PublishError, match="none is given now"):
        release_package(load_terms(CANCER), store, expect_head=published)
    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(PublishError, match="not an OCDS release package"):
        published_head(tmp_path / "other.json")
