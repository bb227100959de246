"""Baseline and accountability: totals reconcile with the store and the ledger."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import ibis
import pyarrow.parquet as pq
import pytest

from carecontract.baseline.accountability import accountability
from carecontract.baseline.compute import build_baseline, patient_flows
from carecontract.baseline.export import export
from carecontract.measures.compute import events_table
from carecontract.payments.book import PaymentBook
from carecontract.records.ingest import ingest
from carecontract.records.pseudonymise import PseudonymKey
from carecontract.records.store import Store
from carecontract.terms import load_terms
from carecontract.terms.years import contract_year
from tests.conftest import VALID_ROW, write_csv

CANCER = Path(__file__).parent.parent / "contracts" / "staffordshire-cancer.yaml"


@pytest.mark.parametrize(("day", "year"), [("2024-03-31", 2023), ("2024-04-01", 2024), ("2024-12-31", 2024)])
def test_contract_year_boundaries(day: str, year: int) -> None:
    assert ibis.literal(date.fromisoformat(day)).pipe(contract_year, 4, 1).execute() == year


def test_patient_flows_follow_each_pathway(tmp_path: Path) -> None:
    rows = [
        {**VALID_ROW, "record_id": "r", "event_date": "2024-01-01", "provider_code": "RJE"},
        {
            **VALID_ROW,
            "record_id": "a",
            "event_type": "first_seen",
            "event_date": "2024-01-05",
            "provider_code": "RJE",
            "referral_route": "",
        },
        {
            **VALID_ROW,
            "record_id": "b",
            "event_type": "treatment",
            "modality": "surgery",
            "event_date": "2024-02-01",
            "provider_code": "RL4",
            "referral_route": "",
        },
        {
            **VALID_ROW,
            "record_id": "c",
            "event_type": "treatment",
            "modality": "radiotherapy",
            "event_date": "2024-03-01",
            "provider_code": "RJE",
            "referral_route": "",
        },
    ]
    ingest([write_csv(tmp_path / "in.csv", rows)], tmp_path / "s", as_of=date(2025, 1, 1))
    flows = patient_flows(events_table(Store(tmp_path / "s"))).to_pyarrow().to_pylist()
    assert flows == [
        {"from_provider": "RJE", "to_provider": "RL4", "moves": 1, "pathways": 1},
        {"from_provider": "RL4", "to_provider": "RJE", "moves": 1, "pathways": 1},
    ]


@pytest.fixture(scope="module")
def paid_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from carecontract.synth.economy import generate
    from carecontract.synth.writer import write_economy

    out = tmp_path_factory.mktemp("baseline")
    files = write_economy(generate(40_000, 3, seed=2, start=date(2017, 4, 1)), out / "data", "parquet")
    ingest(files, out / "store", as_of=date(2026, 1, 1), key=PseudonymKey(b"baseline"))
    PaymentBook(out / "store", load_terms(CANCER)).close([2017, 2018, 2019])
    return out / "store"


def test_activity_reconciles_with_the_store(paid_store: Path) -> None:
    base = build_baseline(paid_store, load_terms(CANCER))
    con = Store(paid_store).connect()
    events, cost = con.execute("SELECT count(*), sum(cost_gbp) FROM events").fetchone()
    assert sum(a["events"] for a in base.activity) == events
    assert sum(a["cost_gbp"] for a in base.activity) == pytest.approx(float(cost), abs=0.01)
    assert {a["year"] for a in base.activity} == {2017, 2018, 2019}
    treated = {a["service"] for a in base.activity}
    assert {"surgery", "chemotherapy", "hospice_stay", "first_seen"} <= treated
    flows = {(f["from"], f["to"]) for f in base.payment_flows}
    assert ("commissioner:05W", "prime:PRIME1") in flows and ("prime:PRIME1", "subcontractor:RJE") in flows


def test_exports_are_readable(paid_store: Path, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    base = build_baseline(paid_store, load_terms(CANCER))
    written = export(base, tmp_path / "out", tmp_path / "baseline.xlsx")
    assert pq.read_table(tmp_path / "out" / "activity.parquet").num_rows == len(base.activity)
    assert (tmp_path / "out" / "patient_flows.csv").read_text().startswith('"from_provider"')
    book = load_workbook(tmp_path / "baseline.xlsx")
    assert book.sheetnames == ["Activity and cost", "Patient flows", "Payment flows"]
    assert book["Activity and cost"].max_row == len(base.activity) + 1
    assert len(written) == 7


def test_the_workbook_is_for_finance_teams(paid_store: Path, tmp_path: Path) -> None:
    """Pounds (not pence) with a pound format, counts with separators, frozen bold headers, 2024/25 years."""
    from openpyxl import load_workbook

    base = build_baseline(paid_store, load_terms(CANCER))
    assert base.payment_flows, "the paid store has closed periods"
    terms = load_terms(CANCER)
    export(base, None, tmp_path / "b.xlsx", terms.contract)
    book = load_workbook(tmp_path / "b.xlsx")
    for sheet in book:
        assert sheet.freeze_panes == "A2" and all(cell.font.bold for cell in sheet[1])
    pay = book["Payment flows"]
    headings = [c.value for c in pay[1]]
    amount = headings.index("Amount £") + 1
    pounds = [row[amount - 1] for row in pay.iter_rows(min_row=2, values_only=True)]
    # every amount is the ledger's pence as pounds, exactly; summed independently of the export
    assert sum(round(p * 100) for p in pounds) == sum(f["pence"] for f in base.payment_flows)
    assert all(pay.cell(row=r, column=amount).number_format.startswith('"£"') for r in range(2, pay.max_row + 1))
    activity = book["Activity and cost"]
    years = {row[0] for row in activity.iter_rows(min_row=2, values_only=True)}
    assert years == {f"{y}/{(y + 1) % 100:02d}" for y in {a["year"] for a in base.activity}}
    events = [c.value for c in activity[1]].index("Events") + 1
    assert activity.cell(row=2, column=events).number_format == "#,##0"
    cost = sum(row[-1] for row in activity.iter_rows(min_row=2, values_only=True))
    assert cost == pytest.approx(sum(a["cost_gbp"] for a in base.activity))
    # each provider named beside its code, from the terms; a code they do not list says so
    names = {s.code: s.name for s in terms.contract.subcontractors}
    head = [c.value for c in activity[1]]
    code, name = head.index("Provider"), head.index("Provider name")
    for row in activity.iter_rows(min_row=2, values_only=True):
        assert row[name] == names.get(row[code], f"unlisted provider {row[code]}")


def test_accountability_reconciles_with_the_ledger(paid_store: Path) -> None:
    terms = load_terms(CANCER)
    rows = accountability(paid_store, terms, date(2018, 4, 1), date(2019, 3, 31))
    ledger = {}
    for r in PaymentBook(paid_store, terms).ledger_rows([2018]):
        ledger[r["account"]] = ledger.get(r["account"], 0) + r["pence"]
    for code in ("RJE", "RL4", "RRE", "HDMH1"):
        paid = sum(r["payment_received_gbp"] for r in rows if r["subcontractor"] == code)
        assert paid == pytest.approx(ledger.get(f"subcontractor:{code}", 0) / 100, abs=0.05)
    assert {r["commissioner"] for r in rows} == {"05D", "05G", "05V", "05W"}
    assert any(r["outcomes"] for r in rows)


def test_baseline_and_accountability_from_the_command_line(paid_store: Path, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "carecontract.cli", *args], capture_output=True, text=True)

    base = json.loads(cli("baseline", str(CANCER), "--store", str(paid_store), "--json").stdout)
    assert set(base) == {"activity", "patient_flows", "payment_flows"}
    rows = json.loads(cli("accountability", str(CANCER), "--store", str(paid_store), "--json").stdout)
    assert len(rows) == 4 * 4
    table = cli("baseline", "--store", str(paid_store), "--excel", str(tmp_path / "b.xlsx"))
    assert table.returncode == 0 and "Patient flows" in table.stdout and (tmp_path / "b.xlsx").exists()
