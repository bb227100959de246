"""The contract every importer keeps, so one driver can stream, reconcile and ingest any of them.

An importer module ``carecontract.imports.<kind>`` exposes:

- ``KIND: str`` — the name on the command line (``carecontract import KIND FILE...``);
- ``SPECIFICATION: str`` — the published specification and version its code tables come from;
- ``def map_file(path: Path) -> Iterator[Mapped]`` — reads one source file *streaming* (memory
  bounded whatever the file's size) and yields one :class:`Mapped` per source record, in file order;
- ``def count_records(path: Path) -> int`` — the file's source records counted *without* the mapping
  (physical data lines, resources, ...), so the driver can prove every record was mapped or rejected.

Every source record is either mapped to one or more interchange events, or rejected with a reason
that names the source field and value (``"CANCER TREATMENT MODALITY '99': not a code in CWT v12.1"``).
Unknown codes are rejections, never silent defaults. NHS numbers stay in the ``nhs_number`` column of
the events: ingest pseudonymises them before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Mapped:
    """One source record's fate: the events it became, or the reason it could not become any."""

    #: Where the record is in its source: ``"file.csv:17"`` (physical line) or a FHIR resource id.
    source_record: str
    #: Interchange rows (keys from :data:`carecontract.records.schema.ALL_COLUMNS`, values as text or
    #: numbers). ``record_id`` must be stable across re-imports of the same source record so that a
    #: resubmitted extract corrects rather than duplicates.
    events: list[dict[str, object]] = field(default_factory=list)
    #: Why the record was rejected (names the source field and value); ``None`` when mapped.
    problem: str | None = None


class Importer(Protocol):
    KIND: str
    SPECIFICATION: str

    def map_file(self, path: Path) -> Iterator[Mapped]: ...

    def count_records(self, path: Path) -> int: ...
