"""Worked examples as data: load the YAML spec cases and ingest each case's events into a store.

Why data, not Python: a commissioner's analyst can check a rule by writing the case they would
work by hand — the events (rows of the interchange format, docs/records.md), the period, and the
figures they expect — without touching the test code. The runners (``test_measure_cases.py``,
``test_payment_cases.py``) run every case on every engine. See ``README.md`` here for the format.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from carecontract.records.ingest import ingest
from carecontract.records.pseudonymise import PseudonymKey

SPEC = Path(__file__).parent
#: Ingest's "today": every case's dates must be before it (later dates are quarantined as future).
AS_OF = date(2026, 1, 1)
KEY = PseudonymKey(b"spec-cases")


class CaseError(ValueError):
    """A case file that cannot be read as a case: said with the file and the case's name."""


@dataclass(frozen=True)
class Case:
    """One worked example: events in, expected figures out."""

    file: Path
    name: str
    source: str
    events: str  # CSV text in the interchange format, comment lines removed
    data: dict[str, Any] = field(repr=False)  # the rest of the case, for its runner
    quarantined: int = 0  # rows the case expects ingest to refuse

    @property
    def id(self) -> str:
        return f"{self.file.stem}/{re.sub(r'[^a-z0-9]+', '-', self.name.lower()).strip('-')}"


def load_cases(folder: Path, keys: set[str]) -> list[Any]:
    """Every case in ``folder/*.yaml`` as a ``pytest.param`` with a readable id.

    ``keys`` are the case keys the runner understands beyond the common ones; any other key is an
    error, so a misspelt expectation fails loudly instead of being ignored.
    """
    common = {"name", "source", "events", "quarantined"}
    out = []
    for file in sorted(folder.glob("*.yaml")):
        try:
            loaded = yaml.safe_load(file.read_text())
        except yaml.YAMLError as exc:
            raise CaseError(f"{file}: {exc}") from None
        entries = loaded.get("cases") if isinstance(loaded, dict) else None
        if not entries:
            raise CaseError(f"{file}: expected a top-level 'cases:' list")
        for entry in entries:
            name = entry.get("name") or "?"
            unknown = set(entry) - common - keys
            missing = {"name", "source", "events"} - set(entry)
            if unknown or missing:
                raise CaseError(f"{file}: case {name!r}: unknown keys {sorted(unknown)}, missing {sorted(missing)}")
            rest = {k: v for k, v in entry.items() if k in keys}
            case = Case(file, name, entry["source"], _csv(entry["events"]), rest, entry.get("quarantined", 0))
            out.append(pytest.param(case, id=case.id))
    return out


def _csv(text: str) -> str:
    """The case's rows as a clean CSV file: ``#`` lines dropped, cells trimmed (so columns may be aligned)."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(lines, skipinitialspace=True):
        writer.writerow(cell.strip() for cell in row)
    return out.getvalue()


_STORES: dict[str, Path] = {}


def store_for(case: Case, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The case's events ingested into a store of their own (once per test run, shared by engines)."""
    if case.id not in _STORES:
        folder = tmp_path_factory.mktemp("case")
        events = folder / "events.csv"
        events.write_text(case.events)
        result = ingest([events], folder / "store", key=KEY, as_of=AS_OF)
        assert result.quarantined == case.quarantined, f"{case.id}: ingest refused rows: {result.reasons}"
        _STORES[case.id] = folder / "store"
    return _STORES[case.id]
