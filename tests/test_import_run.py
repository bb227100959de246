"""The import driver's guarantees, on a toy kind whose mapping the test controls.

Counts are checked against what the test itself wrote (lines of the source file) and what the store
holds, never against the numbers the driver reports alone.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from carecontract.errors import UserError
from carecontract.imports import run
from carecontract.imports.base import Mapped
from carecontract.records.store import Store

NHS = "9434765919"  # the NHS's worked example: valid


def _toy_module(lines_counted_offset: int = 0) -> types.ModuleType:
    """Source: one line per pathway, ``key,nhs,referral_date,treatment_date``; a line with 'bad' rejects."""
    module = types.ModuleType("carecontract.imports.toy")
    module.KIND = "toy"
    module.SPECIFICATION = "a toy specification, v1"

    def count_records(path: Path) -> int:
        return sum(1 for line in path.read_text().splitlines()[1:] if line.strip()) + lines_counted_offset

    def map_file(path: Path) -> Iterator[Mapped]:
        for n, line in enumerate(path.read_text().splitlines()[1:], start=2):
            if not line.strip():
                continue
            key, nhs, referral, treatment = line.split(",")
            where = f"{path.name}:{n}"
            if "bad" in line:
                yield Mapped(where, problem=f"NHS NUMBER '{nhs}': the toy rejects this line")
                continue
            base = {"nhs_number": nhs, "provider_code": "RJE", "commissioner_code": "05D"}
            events = [
                {
                    **base,
                    "record_id": f"TOY:{key}:referral",
                    "event_type": "referral",
                    "event_date": referral,
                    "referral_route": "urgent_gp",
                },
            ]
            if treatment:
                events.append(
                    {
                        **base,
                        "record_id": f"TOY:{key}:treatment",
                        "event_type": "treatment",
                        "event_date": treatment,
                        "modality": "surgery",
                    }
                )
            yield Mapped(where, events)

    module.count_records = count_records
    module.map_file = map_file
    return module


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = _toy_module()
    monkeypatch.setitem(sys.modules, "carecontract.imports.toy", module)
    monkeypatch.setattr(run, "KINDS", (*run.KINDS, "toy"))
    return module


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("key,nhs,referral,treatment\n" + "\n".join(rows) + "\n")
    return path


def _store_events(store: Path) -> dict[str, str]:
    con = Store(store).connect()
    try:
        return dict(con.execute("SELECT record_id, event_type FROM events").fetchall())
    finally:
        con.close()


def test_every_record_mapped_or_rejected_and_events_ingested(toy, tmp_path: Path) -> None:
    rows = ["p1,9434765919,2024-01-02,2024-02-01", "p2,9434765919,2024-01-03,", f"bad,{NHS},2024-01-04,"]
    src = _write(tmp_path / "extract.csv", rows)
    result = run.import_files("toy", [src], tmp_path / "store")
    physical = len(src.read_text().splitlines()) - 1  # independent: the file's data lines
    assert result.records == physical == result.mapped + result.rejected
    assert (result.mapped, result.rejected) == (2, 1)
    events = _store_events(tmp_path / "store")
    assert set(events) == {"TOY:p1:referral", "TOY:p1:treatment", "TOY:p2:referral"}
    assert result.ingest.read == 3 == result.ingest.accepted + result.ingest.quarantined
    assert result.rejections == {"NHS NUMBER": 1}


def test_rejection_report_holds_no_nhs_number(toy, tmp_path: Path) -> None:
    src = _write(tmp_path / "extract.csv", [f"bad,{NHS},2024-01-04,", "p1,9434765919,2024-01-02,"])
    result = run.import_files("toy", [src], tmp_path / "store")
    report = Path(result.report)
    assert report.parent == tmp_path / "store" / run.REPORT_FOLDER
    assert report.stat().st_mode & 0o077 == 0
    table = pq.read_table(report).to_pylist()
    assert len(table) == 1 and "##########" in table[0]["reason"]
    assert NHS.encode() not in report.read_bytes()
    for path in (tmp_path / "store").rglob("*"):
        if path.is_file():
            assert NHS.encode() not in path.read_bytes(), path


def test_resubmitted_extract_corrects_and_withdraws(toy, tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = _write(tmp_path / "m1.csv", ["p1,9434765919,2024-01-02,2024-02-01", "p2,9434765919,2024-01-03,"])
    run.import_files("toy", [first], store)
    # the next month's extract: p1's treatment was recorded in error, p2's date corrected
    second = _write(tmp_path / "m2.csv", ["p1,9434765919,2024-01-02,", "p2,9434765919,2024-01-05,"])
    result = run.import_files("toy", [second], store)
    assert result.withdrawals == 1
    assert result.ingest.counts["withdrawn"] == 1 and result.ingest.counts["corrected"] == 1
    con = Store(store).connect()
    try:
        rows = con.execute("SELECT record_id, event_date::VARCHAR FROM events ORDER BY 1").fetchall()
    finally:
        con.close()
    assert rows == [("TOY:p1:referral", "2024-01-02"), ("TOY:p2:referral", "2024-01-05")]
    # the same extract again: nothing doubles
    again = run.import_files("toy", [second], store)
    assert again.ingest.accepted == again.ingest.counts.get("unchanged") == 2
    assert len(_store_events(store)) == 2


def test_unreconciled_file_is_refused_whole(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "carecontract.imports.toy", _toy_module(lines_counted_offset=1))
    monkeypatch.setattr(run, "KINDS", (*run.KINDS, "toy"))
    src = _write(tmp_path / "extract.csv", ["p1,9434765919,2024-01-02,"])
    with pytest.raises(run.SourceNotReconciled, match="2 records in the file but 1"):
        run.import_files("toy", [src], tmp_path / "store")
    assert not Store(tmp_path / "store").exists()


def test_user_mistakes_are_user_errors(toy, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown import kind 'hes'"):
        run.import_files("hes", [tmp_path / "x.csv"], tmp_path / "store")
    with pytest.raises(UserError, match="no such file"):
        run.import_files("toy", [tmp_path / "missing.csv"], tmp_path / "store")
