"""Quality report figures on a store whose answers can be worked out by hand."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from carecontract.records.ingest import ingest
from carecontract.records.quality import quality
from tests.conftest import VALID_ROW, write_csv

DIAG = {**VALID_ROW, "event_type": "diagnosis", "referral_route": "", "icd10": "C50.1"}


def test_completeness_validity_duplicates_and_timeliness(tmp_path: Path) -> None:
    rows = [
        {**VALID_ROW, "record_id": "a", "event_date": "2020-01-01"},
        {**VALID_ROW, "record_id": "b", "event_date": "2024-06-01", "provider_code": "RL4"},
        {**DIAG, "record_id": "c", "event_date": "2024-06-02"},
        {**DIAG, "record_id": "d", "icd10": "", "event_date": "2024-06-03"},  # missing icd10 where required
        {**VALID_ROW, "record_id": "a"},  # duplicate
        {**VALID_ROW, "record_id": "e", "nhs_number": "9434765918", "provider_code": ""},
    ]
    ingest([write_csv(tmp_path / "in.csv", rows)], tmp_path / "s", as_of=date(2025, 1, 1))
    report = quality(tmp_path / "s").as_dict()
    assert report["rows"] == {"read": 6, "accepted": 3, "quarantined": 3}
    assert report["duplicates"] == 1
    cols = {c["column"]: c for c in report["columns"]}
    assert cols["icd10"]["completeness_where_required"] == 0.5  # 1 of 2 diagnoses
    assert cols["icd10"]["completeness"] == round(1 / 6, 4)
    assert cols["nhs_number"]["invalid_rows"] == 1
    assert cols["provider_code"]["completeness"] == round(5 / 6, 4)
    assert cols["record_id"]["validity"] == round(5 / 6, 4)
    t = report["timeliness"]
    assert (t["earliest_event"], t["latest_event"]) == ("2020-01-01", "2024-06-02")
    assert t["share_older_than_4y"] > 0  # the 2020 event was over four years old when it arrived
    providers = {p["provider"]: p for p in report["by_provider"]}
    assert providers["(missing)"]["read"] == 1 and providers["(missing)"]["validity"] == 0
    assert providers["RL4"] == {**providers["RL4"], "read": 1, "accepted": 1, "validity": 1.0}
