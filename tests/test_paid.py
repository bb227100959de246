"""What was actually paid, on every surface: one set of components, from the journal where ``pay`` posted.

Counts are made independently from the journal's own postings, never from the figures the code
under test reports.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from carecontract.cli import app
from carecontract.payments import accounts
from carecontract.payments.book import PaymentBook
from carecontract.payments.components import PAID, WENT, component_table, payment_components, totals
from carecontract.payments.disputes import open_dispute
from carecontract.payments.journal import Journal
from carecontract.payments.settle import post_until
from carecontract.publish.money import money_by_kind
from carecontract.terms import load_terms
from tests.conftest import CANCER_TERMS

TODAY = date(2026, 1, 1)


def _paid(tmp_path: Path, paid_store: Path) -> Path:
    local = tmp_path / "store"
    shutil.copytree(paid_store, local)
    post_until(load_terms(CANCER_TERMS), local, date(2019, 5, 15), [2017, 2018], today=TODAY)
    return local


def test_paid_rows_are_the_journal_where_pay_posted_and_statements_elsewhere(paid_store: Path, tmp_path: Path) -> None:
    local = _paid(tmp_path, paid_store)
    terms = load_terms(CANCER_TERMS)
    book = PaymentBook(local, terms)
    rows = book.paid_rows()
    journal = Journal(book.root, terms.contract.name).rows()
    assert {r["period"] for r in rows if r["source"] == "journal"} == {r["period"] for r in journal} == {2017, 2018}
    assert {r["period"] for r in rows if r["source"] == "statement"} == {2019}  # closed only, never posted
    assert len([r for r in rows if r["source"] == "journal"]) == len(journal)
    # 2018 is reconciled on 2019-06-01, after --until: only payments on account so far, all with the prime
    on_account_2018 = sum(r["pence"] for r in journal if r["period"] == 2018 and r["account"].startswith("prime:"))
    comps = payment_components(rows, terms.contract)
    held = [c for c in comps if c["year"] == 2018 and c["group"] == "held"]
    assert [c["pence"] for c in held] == [on_account_2018] and on_account_2018 > 0


def test_the_table_adds_up_counted_from_the_journal_and_by_kind_agrees(paid_store: Path, tmp_path: Path) -> None:
    local = _paid(tmp_path, paid_store)
    terms = load_terms(CANCER_TERMS)
    journal = Journal(PaymentBook(local, terms).root, terms.contract.name)
    open_dispute(journal, terms.contract, 2017, "PRIME1", 12_345, "Schedule 3", "evidence", on=TODAY)
    rows = PaymentBook(local, terms).paid_rows()
    comps = payment_components(rows, terms.contract)
    table = component_table(comps, terms.contract)
    by_account: dict[tuple[int, str], int] = defaultdict(int)
    for r in rows:
        by_account[(r["period"], accounts.kind(r["account"]))] += r["pence"]
    for year in table["years"]:
        paid = -by_account[(year, accounts.COMMISSIONER)]
        assert table["totals"][year][PAID] == table["totals"][year][WENT] == paid
        assert table["balanced"][year]
        lines = sum(x["pence"][year] or 0 for x in table["lines"] if x["section"] == WENT)
        assert lines == paid
    # the disputed amount sits in suspense, shown as its own line, and is not paid to anyone
    assert sum(x["pence"][2017] or 0 for x in table["lines"] if x["group"] == "suspense") == 12_345
    assert all(x["note"][y] for x in table["lines"] for y in table["years"] if (x["pence"][y] or 0) < 0)
    # money by kind: the same rows; payees plus what was returned add up to what the commissioners paid the prime
    kinds = money_by_kind(rows, terms.contract)
    for year, sums in totals(comps).items():
        shares = sum(c["pence"] for c in comps if c["year"] == year and c["group"] in ("gain_share", "loss_share"))
        assert sum(k["pence"] for k in kinds if k["year"] == year) == sums[PAID] - shares


def test_an_as_at_before_any_submission_is_one_line(paid_store: Path) -> None:
    result = CliRunner().invoke(
        app, ["baseline", str(CANCER_TERMS), "--store", str(paid_store), "--as-at", "2000-01-01"]
    )
    assert result.exit_code == 2
    assert "held no submission then" in result.output and "Traceback" not in result.output


def test_the_notebook_pays_through_the_calendar_as_the_cli(paid_store: Path, tmp_path: Path) -> None:
    import carecontract as cc

    local = tmp_path / "store"
    shutil.copytree(paid_store, local)
    terms = load_terms(CANCER_TERMS)
    run = cc.pay(terms, local, periods=[2017], until="2019-05-15")
    journal = Journal(PaymentBook(local, terms).root, terms.contract.name).entries()
    assert {e["key"] for e in run.posted} == {e["key"] for e in journal}  # the same journal as `pay`
    assert sum(e["key"].startswith("on_account:2017:") for e in journal) == 12
    assert any(e["key"] == "reconciliation:2017:1" for e in journal)
    assert run.balanced and int(run.ledger()["pence"].sum()) == 0
    assert cc.pay(terms, local, periods=[2017], until="2019-05-15").posted == []  # idempotent
    comps = run.components(terms.contract)
    assert set(comps["section"]) == {PAID, WENT}


def test_ocds_publishes_what_was_paid_and_each_dispute_step(paid_store: Path, tmp_path: Path) -> None:
    from carecontract.payments.disputes import resolve, respond
    from carecontract.publish.ocds import release_package
    from tests.ocds_validation import validation_errors

    local = _paid(tmp_path, paid_store)
    terms = load_terms(CANCER_TERMS)
    journal = Journal(PaymentBook(local, terms).root, terms.contract.name)
    d = open_dispute(journal, terms.contract, 2017, "PRIME1", 50_000, "Schedule 3 para 4", "rate misread", on=TODAY)
    respond(journal, terms.contract, d["id"], "05D", "we read it as published", on=TODAY)
    resolve(journal, terms.contract, d["id"], "partly", "half of it", awarded_pence=25_000, on=TODAY, who="panel")
    package = release_package(terms, local)
    assert validation_errors(package, tmp_path) == []
    implementation = package["releases"][-1]["contracts"][0]["implementation"]
    milestones = {m["id"]: m for m in implementation["milestones"]}
    # every transaction pays a milestone that is published; 2018 is on account only, so far
    assert all(t["relatedImplementationMilestone"]["id"] in milestones for t in implementation["transactions"])
    assert milestones["payment-2018"]["status"] == "scheduled"
    # commissioners → prime, counted from the journal's own postings (on account and true-up)
    rows = journal.rows()
    commissioners = {f"carecontract-{c.code}" for c in terms.contract.commissioners}
    prime = f"carecontract-{terms.contract.prime.code}"
    for year in (2017, 2018):
        into = sum(
            r["pence"]
            for r in rows
            if r["period"] == year and r["rule"] in ("on_account", "true_up") and r["account"].startswith("prime:")
        )
        published = sum(
            round(t["value"]["amount"] * 100)
            for t in implementation["transactions"]
            if t["relatedImplementationMilestone"]["id"] == f"payment-{year}"
            and t["payer"]["id"] in commissioners
            and t["payee"]["id"] == prime
        ) - sum(
            round(t["value"]["amount"] * 100)
            for t in implementation["transactions"]
            if t["relatedImplementationMilestone"]["id"] == f"payment-{year}"
            and t["payer"]["id"] == prime
            and t["payee"]["id"] in commissioners
            and t["source"].endswith(":true_up")
        )
        assert published == into
    dispute = milestones[f"dispute-{d['id']}"]
    assert dispute["status"] == "met" and len(dispute["documents"]) == 3  # notice, reply, resolution
    assert "Schedule 3 para 4" in dispute["description"] and "£250.00 awarded" in dispute["description"]


def test_the_service_shows_what_was_paid_with_its_disputes(paid_store: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from carecontract.service import Principal, Tokens, create_app

    local = _paid(tmp_path, paid_store)
    terms = load_terms(CANCER_TERMS)
    journal = Journal(PaymentBook(local, terms).root, terms.contract.name)
    d = open_dispute(journal, terms.contract, 2017, "05D", 7_000, "Schedule 3", "double counted", on=TODAY)
    tokens = Tokens({"p": Principal("prime", "PRIME1"), "s": Principal("provider", "RJE")})
    client = TestClient(create_app(local, [terms], tokens, stress_runs=50))
    body = client.get("/api/contracts/staffordshire-cancer-care/payments", headers={"Authorization": "Bearer p"}).json()
    assert body["source"] == ["journal", "statement"]  # 2017, 2018 posted; 2019 only closed
    table = body["component_table"]
    rows = journal.rows()
    for year in (2017, 2018):
        paid = -sum(r["pence"] for r in rows if r["period"] == year and r["account"].startswith("commissioner:"))
        assert round(table["totals"][str(year)][PAID] * 100) == round(table["totals"][str(year)][WENT] * 100) == paid
    assert [x["id"] for x in body["disputes"]] == [d["id"]]
    prime = client.get("/api/contracts/staffordshire-cancer-care/prime", headers={"Authorization": "Bearer p"}).json()
    (y2018,) = [y for y in prime["years"] if y["year"] == 2018]  # paid on account only: nothing passed on yet
    assert all(s["paid_gbp"] == 0 for s in y2018["subcontractors"]) and any(
        s["due_gbp"] for s in y2018["subcontractors"]
    )
    sub = client.get("/api/contracts/staffordshire-cancer-care/payments", headers={"Authorization": "Bearer s"}).json()
    assert "disputes" not in sub and "component_table" not in sub


def test_baseline_payment_flows_split_a_true_up_between_every_commissioner(paid_store: Path, tmp_path: Path) -> None:
    from carecontract.baseline.compute import payment_flows

    local = _paid(tmp_path, paid_store)
    terms = load_terms(CANCER_TERMS)
    rows = PaymentBook(local, terms).paid_rows([2017])
    flows = payment_flows(rows)
    # each account's net, from the flows, is its net from the postings themselves
    net: dict[str, int] = defaultdict(int)
    for f in flows:
        net[f["from"]] -= f["pence"]
        net[f["to"]] += f["pence"]
    counted: dict[str, int] = defaultdict(int)
    for r in rows:
        counted[r["account"]] += r["pence"]
    assert {a: p for a, p in net.items() if p} == {a: p for a, p in counted.items() if p}
    paying = {f["from"] for f in flows if f["rule"] in ("on_account", "true_up")}
    assert {accounts.commissioner(c.code) for c in terms.contract.commissioners} <= paying
