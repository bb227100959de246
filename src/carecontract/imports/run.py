"""The import driver: one national-data-set extract in, one ingest submission out, every record counted.

Why a driver apart from the importers: each importer (``carecontract.imports.<kind>``) only knows its
specification — how one source record becomes interchange events, or why it cannot. The guarantees
a commissioner relies on are the same for every kind, so they live here once:

- **Streaming.** ``map_file`` yields one :class:`~carecontract.imports.base.Mapped` per source record;
  the driver writes events to a staging Parquet file in chunks of :data:`CHUNK_ROWS`, so memory is
  bounded whatever the extract's size. The staging files sit in an owner-only temporary folder and
  are deleted when the import ends; they hold what the source file holds, no more.
- **Every source record accounted for.** Each file's records are counted *independently* of the
  mapping (the importer's ``count_records``: for CSV, physical lines counted from the file's bytes by
  :mod:`carecontract.records.lines`) and must equal mapped + rejected, or the import is refused
  whole before anything is written. Every event staged is then read by ingest, where
  ``read = accepted + quarantined`` holds per event.
- **Rejections with reasons, never a raw NHS number.** A source record the importer cannot map is
  kept in the store's import report (``imports/<submission>-<kind>.parquet``) with its reason, which
  names the source field and value; every NHS-number-shaped value in it is masked (``#``) as ingest
  masks raw lines. The events themselves are pseudonymised by ingest before anything is stored.
- **A resubmitted extract corrects, it does not duplicate.** Record ids are derived from the source's
  own keys (``<source key>:<event slot>``), so the same pathway imported again corrects its events
  (or leaves them unchanged). An event the store holds for a source key in this extract that the
  extract no longer carries (a treatment recorded in error, say) is withdrawn (``action = withdraw``),
  so the store ends as the latest extract says.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.parquet as pq

from carecontract.errors import UserError
from carecontract.imports.base import Mapped
from carecontract.records import schema
from carecontract.records.ingest import IngestResult, ingest
from carecontract.records.pseudonymise import PseudonymKey, load_key
from carecontract.records.reading import NHS_SHAPED
from carecontract.records.store import PRIVATE_FILE, Store

Progress = Callable[[str, float], None]

#: The kinds ``carecontract import`` knows, each a module ``carecontract.imports.<kind>``.
KINDS: tuple[str, ...] = ("cwt", "cosd", "apc", "deaths", "fhir")
#: Rows buffered before a chunk is written to the staging file (about 10 MB of text at most).
CHUNK_ROWS = 50_000
#: Where the import reports live in a store (outside the folders ingest sweeps).
REPORT_FOLDER = "imports"
NHS_MASK = "#"
#: Record ids are ``<source key>:<event slot>``: the source key groups a source record's events.
SLOT_SEPARATOR = ":"

STAGING_SCHEMA = pa.schema([(c, pa.string()) for c in schema.ALL_COLUMNS])
REPORT_SCHEMA = pa.schema(
    [("kind", pa.string()), ("source_file", pa.string()), ("source_record", pa.string()), ("reason", pa.string())]
)


class UnknownKind(UserError):
    """A kind ``carecontract import`` does not know."""


class SourceNotReconciled(UserError):
    """A source file whose records could not all be accounted for: the import is refused whole."""


@dataclass
class SourceLedger:
    """One source file: its records counted from the file, and what became of them."""

    file: str
    records: int  # counted independently of the mapping (importer's count_records)
    mapped: int
    rejected: int
    events: int
    counted_by: str = "file"  # "mapping" when the importer has no count_records of its own

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class ImportResult:
    """What one import did. ``as_dict`` is the CLI's ``--json`` output.

    Invariants: ``records == mapped + rejected`` per source file (records counted from the file, not
    from the mapping); ``events + withdrawals == ingest.read`` and ``ingest.read == ingest.accepted +
    ingest.quarantined`` (unless every staged file had been submitted before: ``ingest.no_op``).
    """

    kind: str
    specification: str
    sources: list[SourceLedger]
    rejections: dict[str, int]  # reason's source field → records rejected for it
    withdrawals: int  # events of this extract's source keys it no longer carries
    ingest: IngestResult
    report: str | None  # the store's import report holding the rejected records

    @property
    def records(self) -> int:
        return sum(s.records for s in self.sources)

    @property
    def mapped(self) -> int:
        return sum(s.mapped for s in self.sources)

    @property
    def rejected(self) -> int:
        return sum(s.rejected for s in self.sources)

    @property
    def events(self) -> int:
        return sum(s.events for s in self.sources)

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "specification": self.specification,
            "records": self.records,
            "mapped": self.mapped,
            "rejected": self.rejected,
            "rejections": self.rejections,
            "events": self.events,
            "withdrawals": self.withdrawals,
            "report": self.report,
            "sources": [s.as_dict() for s in self.sources],
            "ingest": self.ingest.as_dict(),
        }


def importer(kind: str) -> ModuleType:
    """The module of ``kind``; an unknown kind is a one-line error naming the known ones."""
    name = kind.strip().lower()
    if name not in KINDS:
        raise UnknownKind(f"unknown import kind {kind!r}: one of {', '.join(KINDS)}")
    return importlib.import_module(f"carecontract.imports.{name}")


def mask_nhs_numbers(text: str) -> str:
    """Every NHS-number-shaped value in ``text`` masked, as ingest masks a raw line."""
    return NHS_SHAPED.sub(lambda m: NHS_MASK * len(m.group(0)), text)


def source_field(problem: str) -> str:
    """The source field a rejection names: the text before the first quoted value or colon."""
    if problem.startswith("line "):
        return "record layout"  # a line that could not be split into the header's fields
    head = problem.split("'", 1)[0].split(":", 1)[0].strip()
    return head or "record"


class _Staging:
    """Events to a staging Parquet file in chunks; rejections to the report, masked, in chunks."""

    def __init__(self, folder: Path, name: str, stamp: str) -> None:
        self.path = folder / f"{name}.parquet"
        # the import's time in the file's metadata: an extract imported again is never skipped as a
        # file ingest has seen (its rows are then unchanged, or correct what a later extract changed)
        stamped = STAGING_SCHEMA.with_metadata({b"carecontract.import": stamp.encode()})
        self._writer = pq.ParquetWriter(self.path, stamped, compression="zstd")
        self._rows: list[dict[str, object]] = []
        self.events = 0

    def add(self, events: list[dict[str, object]]) -> int:
        self._rows.extend(events)
        self.events += len(events)
        if len(self._rows) >= CHUNK_ROWS:
            self.flush()
        return len(events)

    def flush(self) -> None:
        """One chunk as text columns: Arrow infers each column's type from its values and casts it to
        text (dates to ISO dates; empty text means missing to ingest); a column of mixed types is
        converted value by value instead."""
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        columns = {}
        for column in schema.ALL_COLUMNS:
            values = [row.get(column) for row in rows]
            try:
                columns[column] = pa.array(values).cast(pa.string())
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                columns[column] = pa.array([None if v is None else str(v) for v in values], pa.string())
        self._writer.write_table(pa.table(columns, schema=self._writer.schema))

    def close(self) -> None:
        self.flush()
        self._writer.close()
        os.chmod(self.path, PRIVATE_FILE)  # in an owner-only folder already; the file too


class Rejections:
    """Rejected source records to a Parquet file, NHS-number-shaped values masked, in chunks."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self._writer: pq.ParquetWriter | None = None
        self._rows: list[dict[str, str]] = []
        self.by_field: dict[str, int] = {}
        self.count = 0

    def add(self, source_file: str, record: Mapped) -> None:
        problem = mask_nhs_numbers(record.problem or "no events and no reason given")
        self._rows.append(
            {
                "kind": self.kind,
                "source_file": source_file,
                "source_record": mask_nhs_numbers(record.source_record),
                "reason": problem,
            }
        )
        key = source_field(problem)
        self.by_field[key] = self.by_field.get(key, 0) + 1
        self.count += 1
        if len(self._rows) >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, REPORT_SCHEMA, compression="zstd")
        self._writer.write_table(pa.Table.from_pylist(self._rows, schema=REPORT_SCHEMA))
        self._rows = []

    def close(self) -> Path | None:
        self.flush()
        if self._writer is None:
            return None
        self._writer.close()
        os.chmod(self.path, PRIVATE_FILE)
        return self.path


def _check_files(files: Sequence[Path]) -> list[Path]:
    paths = [Path(f) for f in files]
    if not paths:
        raise UserError("name at least one file to import")
    for path in paths:
        if not path.exists():
            raise UserError(f"{path}: no such file")
        if not path.is_file():
            raise UserError(f"{path}: not a file")
    return paths


def _stage_file(module: ModuleType, path: Path, staging: _Staging, rejections: Rejections, report) -> SourceLedger:
    # independent of the mapping: counted from the file itself (an importer without a counter is
    # reconciled with its own count only, and the ledger says so)
    counter = getattr(module, "count_records", None)
    counted = counter(path) if counter else None
    mapped = rejected = 0
    events_before = staging.events
    for n, record in enumerate(module.map_file(path), start=1):
        if record.problem is None and record.events:
            staging.add(record.events)
            mapped += 1
        else:
            rejections.add(str(path), record)
            rejected += 1
        if n % CHUNK_ROWS == 0 and counted:
            report("map", min(n / counted, 1.0))
    counted_by = "file" if counted is not None else "mapping"
    counted = mapped + rejected if counted is None else counted
    if mapped + rejected != counted:
        raise SourceNotReconciled(
            f"{path}: {counted:,} records in the file but {mapped + rejected:,} mapped or rejected; nothing imported"
        )
    return SourceLedger(str(path), counted, mapped, rejected, staging.events - events_before, counted_by)


def stage(
    module: ModuleType, paths: Sequence[Path], folder: Path, rejections: Rejections, stamp: str, report: Progress
) -> tuple[list[SourceLedger], list[Path]]:
    """Map every file to a staging Parquet file in ``folder`` (chunk by chunk: bounded memory)."""
    ledgers, staged = [], []
    for index, path in enumerate(paths):
        staging = _Staging(folder, f"{index:03d}-{path.name}", stamp)
        try:
            ledgers.append(_stage_file(module, path, staging, rejections, report))
        finally:
            staging.close()
        staged.append(staging.path)
        report("map", (index + 1) / len(paths))
    return ledgers, staged


def _withdrawals(staged: list[Path], store: Store, target: Path) -> int:
    """Withdraw the store's current events of this extract's source keys that the extract no longer carries."""
    if not store.exists():
        return 0
    con = store.connect()
    try:
        files = ", ".join(f"'{p}'" for p in staged)
        key = f"regexp_extract(record_id, '^(.*){SLOT_SEPARATOR}[^{SLOT_SEPARATOR}]*$', 1)"
        con.execute(
            "CREATE TEMP TABLE staged AS SELECT DISTINCT record_id "
            f"FROM read_parquet([{files}]) WHERE record_id IS NOT NULL"
        )
        withdraw = con.sql(
            f"""
            SELECT e.record_id, e.provider_code FROM events e
            WHERE {key.replace("record_id", "e.record_id")} IN (SELECT {key} FROM staged WHERE {key} <> '')
              AND e.record_id NOT IN (SELECT record_id FROM staged)
            ORDER BY e.record_id
            """
        ).fetch_arrow_table()
    finally:
        con.close()
    if withdraw.num_rows == 0:
        return 0
    n = withdraw.num_rows
    columns = {c: pa.nulls(n, pa.string()) for c in schema.ALL_COLUMNS}
    columns["record_id"] = withdraw["record_id"].cast(pa.string())
    columns["provider_code"] = withdraw["provider_code"].cast(pa.string())
    columns["action"] = pa.array([schema.WITHDRAW] * n, pa.string())
    pq.write_table(pa.table(columns, schema=STAGING_SCHEMA), target, compression="zstd")
    return n


def import_files(
    kind: str,
    files: Sequence[str | Path],
    store: str | Path | Store,
    *,
    key: PseudonymKey | None = None,
    as_of: date | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Map ``files`` of ``kind`` to interchange events and ingest them into ``store`` as one submission."""
    module = importer(kind)
    paths = _check_files([Path(f) for f in files])
    store = store if isinstance(store, Store) else Store(store)
    key = key or load_key()
    store.check_key(key.fingerprint)  # refuse a wrong key before any work
    report = progress or (lambda step, done: None)
    folder = Path(tempfile.mkdtemp(prefix="carecontract-import-"))  # 0700: owner only
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    rejections = Rejections(folder / f"rejected-{stamp}.parquet", module.KIND)
    try:
        ledgers, staged = stage(module, paths, folder, rejections, stamp, report)
        withdrawn_path = folder / "withdrawals.parquet"
        withdrawals = _withdrawals(staged, store, withdrawn_path)
        to_ingest = [p for p, ledger in zip(staged, ledgers, strict=True) if ledger.events] + (
            [withdrawn_path] if withdrawals else []
        )
        rejected_file = rejections.close()
        if to_ingest:
            result = ingest(to_ingest, store, key=key, as_of=as_of, progress=progress)
        else:
            result = IngestResult(0, 0, 0, {}, None, str(store.root))
        _reconcile(ledgers, withdrawals, result)
        report_path = _keep_report(rejected_file, store, result, module.KIND, stamp)
        return ImportResult(
            module.KIND, module.SPECIFICATION, ledgers, rejections.by_field, withdrawals, result, report_path
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _reconcile(ledgers: list[SourceLedger], withdrawals: int, result: IngestResult) -> None:
    """Events staged must all have been read by ingest (unless ingest skipped files seen before)."""
    staged = sum(s.events for s in ledgers) + withdrawals
    if result.read != result.accepted + result.quarantined:
        raise AssertionError(
            f"ingest read {result.read} but accepted + quarantined = {result.accepted + result.quarantined}"
        )
    if not result.skipped and result.read != staged:
        raise AssertionError(f"{staged} events staged but ingest read {result.read}")


def _keep_report(rejected: Path | None, store: Store, result: IngestResult, kind: str, stamp: str) -> str | None:
    """Move the rejections into the store, named by the submission they came with (or the time)."""
    if rejected is None:
        return None
    folder = store.root / REPORT_FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = folder / f"{result.batch_id or stamp}-{kind}.parquet"
    shutil.move(rejected, target)
    os.chmod(target, PRIVATE_FILE)
    return str(target)


def rejected_records(store: str | Path | Store) -> pa.Table | None:
    """Every import report of ``store`` as one table (kind, source_file, source_record, reason), or None."""
    root = store.root if isinstance(store, Store) else Path(store)
    reports = sorted((root / REPORT_FOLDER).glob("*.parquet"))
    if not reports:
        return None
    return pa.concat_tables(pq.read_table(p) for p in reports)
