"""Shared fixtures: a fixed pseudonymisation key and helpers to write activity files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from carecontract.records.schema import ALL_COLUMNS

#: A valid row template; tests override fields. 9434765919 is the NHS's own worked example.
VALID_ROW = {
    "record_id": "r1",
    "nhs_number": "9434765919",
    "event_date": "2024-01-05",
    "event_type": "referral",
    "provider_code": "RJE",
    "commissioner_code": "05D",
    "referral_route": "urgent_gp",
}


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test gets the same key and never touches the user's key file."""
    monkeypatch.setenv("CARECONTRACT_KEY", "test-key")
    monkeypatch.setenv("CARECONTRACT_KEY_FILE", str(tmp_path / "unused.key"))


def write_csv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] = ALL_COLUMNS) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path
