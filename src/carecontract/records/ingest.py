"""Ingest activity files into the event store: validate, quarantine, pseudonymise, commit.

The whole ingest is a handful of DuckDB statements over all the rows at once (no Python loop per
row). The invariant everything else relies on:

    read = accepted + quarantined          (for every ingest, and so for the store)

Steps: check every file can be read (an unreadable file stops the ingest before anything is
written; Parquet is judged where it lies, CSV is parsed once into a temporary table) → single-row
rules and pseudonymised NHS numbers (HMAC, in SQL) → cross-row rules (duplicate record ids within
the ingest and against the store; pathway events before the patient's first referral; events after
death) → write the batch's Parquet files → commit the manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from carecontract.records import nhs_number, reading, schema, validation
from carecontract.records.pseudonymise import PseudonymKey, load_key, pseudonym_sql
from carecontract.records.reading import (
    Source,
    SourceSummary,
    UnreadableFile,
    create_raw_view,
    load_source,
    unreadable_source,
)
from carecontract.records.store import EVENT_COLUMNS, Batch, Store

Progress = Callable[[str, float], None]


@dataclass
class IngestResult:
    """What one ingest did. ``as_dict`` is the CLI's ``--json`` output."""

    read: int
    accepted: int
    quarantined: int
    reasons: dict[str, int]
    batch_id: str
    store: str
    sources: list[SourceSummary] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "reasons": self.reasons,
            "batch_id": self.batch_id,
            "store": self.store,
            "sources": [{**s.__dict__, "notes": s.notes()} for s in self.sources],
        }


def _typed_select() -> str:
    """The event store's typed columns from the normalised ones (TRY_CAST: bad rows pass through too)."""
    cast = {
        "record_id": "n_record_id",
        "patient_id": "patient_id",
        "event_date": "n_event_date",
        "tumour_site": schema.tumour_site_sql("n_icd10"),
        "batch_id": "$batch_id",
        "source_file": "source_file",
        "source_row": "source_row",
        "source_line": "source_line",
    }
    parts = []
    for column, sql_type in EVENT_COLUMNS.items():
        expr = cast.get(column, f"n_{column}")
        parts.append(f"TRY_CAST({expr} AS {sql_type}) AS {column}")
    return ", ".join(parts)


def _normalised_from(table: str) -> str:
    """The rows of ``table`` (source relation columns) with every column normalised (``n_*``)."""
    normalised = ", ".join(validation.normalise_sql(c) for c in schema.ALL_COLUMNS)
    return (
        f"SELECT rid, source_index, source_file, raw_line, read_reason, nhs_number AS nhs_raw, source_row, "
        f"source_line, {normalised} FROM {table}"
    )


def _quarantine_select() -> str:
    raw = [c for c in schema.ALL_COLUMNS if c != "nhs_number"]
    return (
        ", ".join(raw)
        # the raw NHS number is kept only where that field itself failed validation
        + ", CASE WHEN patient_id IS NULL THEN nhs_number END AS nhs_number, patient_id, reasons, raw_line, "
        "raw_line_length, raw_line_sha256, $batch_id AS batch_id, source_file, source_row, source_line"
    )


def ingest(
    files: Sequence[str | Path],
    store: str | Path | Store,
    *,
    key: PseudonymKey | None = None,
    as_of: date | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Validate ``files`` and append them to ``store`` as one atomic batch."""
    store = store if isinstance(store, Store) else Store(store)
    key = key or load_key()
    store.check_key(key.fingerprint)
    as_of = as_of or date.today()
    report = progress or (lambda step, done: None)
    paths = [Path(f) for f in files]

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # we draw our own progress
    try:
        report("read", 0.0)
        sources = []
        for index, path in enumerate(paths):
            sources.append(load_source(con, path, index))
            report("read", (index + 1) / len(paths))
        create_raw_view(con, sources)
        # From here on every row carries its own position (rid, source_row), so DuckDB may process
        # rows in any order: this lets it read many single-row-group files in parallel and write the
        # batch without re-ordering (2× faster on two cores). The CSV loads above still needed it.
        con.execute("SET preserve_insertion_order = false")
        with store.writer() as writer:
            store.connect(con)
            try:
                result = _judge_and_write(con, store, writer, key, as_of, sources, report)
            except duckdb.Error as exc:
                raise unreadable_source(con, sources, exc) from exc
        return result
    finally:
        con.close()


def _judge_and_write(con, store, writer, key, as_of, sources: list[Source], report) -> IngestResult:
    """Judge every row and write the batch.

    Kept fast by doing each thing once: NHS numbers are normalised, checked and hashed once per
    distinct value; every row is normalised, typed and judged with a single boolean in one pass;
    the cross-row checks read a few columns of that typed table; the rows that failed anything are
    fetched again as read (a second scan that keeps only them) and only they get reason lists; and
    the accepted rows are written straight from the typed table, in no particular order (the
    quarantine is written in file order, for the people who correct it).
    """
    params = {"today": as_of}
    report("validate", 0.0)
    _pseudonymise(con, key)
    _check_rows(con, params, writer.batch_id)
    report("validate", 1.0)
    report("cross-check", 0.0)
    _cross_check(con)
    _collect_rejected(con, params)
    report("cross-check", 1.0)
    report("write", 0.0)
    written = _write_batch(con, writer, report)
    report("write", 1.0)
    _account_for_every_row(
        con, sources, written, [writer.path(writer.events_file), writer.path(writer.quarantine_file)]
    )
    batch = _batch_record(con, writer, as_of, [s.summary for s in sources])
    report("commit", 0.0)
    writer.commit(batch, key.fingerprint)
    report("commit", 1.0)
    summaries = [s.summary for s in sources]
    return IngestResult(
        batch.read, batch.accepted, batch.quarantined, batch.reasons, writer.batch_id, str(store.root), summaries
    )


def _pseudonymise(con, key: PseudonymKey) -> None:
    """NHS numbers normalised, checked and hashed once per distinct raw value, not once per row."""
    con.execute(
        f"CREATE TEMP TABLE pseudonyms AS SELECT nhs_raw, {pseudonym_sql('n_nhs_number')} AS patient_id "
        "FROM (SELECT nhs_raw, NULLIF(regexp_replace(trim(nhs_raw), '[ -]', '', 'g'), '') AS n_nhs_number "
        "      FROM (SELECT DISTINCT nhs_number AS nhs_raw FROM raw WHERE nhs_number IS NOT NULL)) "
        f"WHERE {nhs_number.valid_sql('n_nhs_number')}",
        {"opad": key.outer_pad, "ipad": key.inner_pad},
    )


def _check_rows(con, params: dict, batch_id: str) -> None:
    """One pass: every row normalised, typed and judged by the row rules with a single boolean."""
    con.execute(f"CREATE TEMP VIEW norm AS {_normalised_from('raw')}")
    nhs_rules = ("invalid_nhs_number", "missing_nhs_number")  # judged by the pseudonym join instead
    row_ok = f"read_reason IS NULL AND NOT {validation.any_broken_sql(skip=nhs_rules)} AND patient_id IS NOT NULL"
    con.execute(
        f"CREATE TEMP TABLE checked AS SELECT rid, source_index, {_typed_select()}, {row_ok} AS row_ok "
        "FROM (SELECT n.*, p.patient_id FROM norm n LEFT JOIN pseudonyms p USING (nhs_raw))",
        {**params, "batch_id": batch_id},
    )


def _cross_check(con) -> None:
    """The rules that need other rows: duplicates (in this ingest and against the store), pathway events
    before the patient's first referral, and any event after the patient's death."""
    con.execute(
        "CREATE TEMP VIEW ids AS SELECT rid, patient_id, record_id AS n_record_id, event_type AS n_event_type, "
        "event_date AS d, source_index, source_row FROM checked WHERE row_ok"
    )
    # duplicates: a record id already in the store, or seen earlier in this ingest (first valid copy wins)
    con.execute(
        "CREATE TEMP TABLE duplicates AS SELECT rid FROM ("
        "  SELECT rid, row_number() OVER (PARTITION BY n_record_id ORDER BY source_index, source_row) AS copy "
        "  FROM ids WHERE n_record_id IN "
        "    (SELECT n_record_id FROM ids GROUP BY n_record_id HAVING count(*) > 1)) WHERE copy > 1 "
        "UNION SELECT rid FROM ids WHERE n_record_id IN (SELECT record_id FROM events)"
    )
    con.execute(
        "CREATE TEMP TABLE timeline AS SELECT patient_id, "
        "min(d) FILTER (WHERE t = 'referral') AS first_referral, min(d) FILTER (WHERE t = 'death') AS death "
        "FROM (SELECT patient_id, d, n_event_type AS t FROM ids "
        "      WHERE n_event_type IN ('referral', 'death') AND rid NOT IN (SELECT rid FROM duplicates) "
        "      UNION ALL SELECT patient_id, event_date, event_type FROM events "
        "      WHERE event_type IN ('referral', 'death') "
        "        AND patient_id IN (SELECT patient_id FROM pseudonyms)) "
        "GROUP BY patient_id"
    )
    pathway = ", ".join(f"'{e}'" for e in schema.PATHWAY_EVENTS)
    con.execute(
        "CREATE TEMP TABLE rejected_cross AS SELECT rid, CASE WHEN rid IN (SELECT rid FROM duplicates) "
        f"THEN ['{validation.DUPLICATE_RECORD_ID}'] ELSE list_filter(["
        f"  CASE WHEN i.n_event_type IN ({pathway}) AND i.d < t.first_referral "
        f"    THEN '{validation.BEFORE_FIRST_REFERRAL}' END, "
        f"  CASE WHEN i.d > t.death THEN '{validation.AFTER_DEATH}' END], lambda x: x IS NOT NULL) END AS reasons "
        "FROM ids i LEFT JOIN timeline t USING (patient_id) "
        "WHERE rid IN (SELECT rid FROM duplicates) "
        f"   OR (i.n_event_type IN ({pathway}) AND i.d < t.first_referral) OR i.d > t.death"
    )


def _collect_rejected(con, params: dict) -> None:
    """The rows that failed anything, as read, and every reason each failed.

    One more scan of the sources (for Parquet, the only other read of the files) keeps the failed rows;
    only for these are the row rules' reasons listed.
    """
    con.execute(
        "CREATE TEMP TABLE suspects AS SELECT * FROM raw "
        "WHERE rid IN (SELECT rid FROM checked WHERE NOT row_ok UNION ALL SELECT rid FROM rejected_cross)"
    )
    con.execute(
        "CREATE TEMP TABLE rejected AS SELECT rid, CASE WHEN read_reason IS NOT NULL THEN [read_reason] "
        f"ELSE {validation.reasons_sql()} END AS reasons FROM ({_normalised_from('suspects')}) "
        "WHERE rid IN (SELECT rid FROM checked WHERE NOT row_ok) "
        "UNION ALL SELECT rid, reasons FROM rejected_cross",
        params,
    )


def _write_batch(con, writer, report) -> int:
    """Write the accepted events (any order) and the quarantine (file order); return the events written."""
    events_path = writer.path(writer.events_file)
    quarantine_path = writer.path(writer.quarantine_file)
    written = con.execute(
        f"COPY (SELECT {', '.join(EVENT_COLUMNS)} FROM checked "
        "WHERE row_ok AND rid NOT IN (SELECT rid FROM rejected)) "
        f"TO '{events_path}' (FORMAT parquet, COMPRESSION zstd)"
    ).fetchall()[0][0]
    report("write", 0.5)
    con.execute(
        f"COPY (SELECT {_quarantine_select()} FROM suspects "
        "JOIN rejected USING (rid) "
        "LEFT JOIN (SELECT rid, patient_id FROM checked) c USING (rid) ORDER BY source_index, source_row) "
        f"TO '{quarantine_path}' (FORMAT parquet, COMPRESSION zstd)",
        {"batch_id": writer.batch_id},
    )
    return written


def _batch_record(con, writer, as_of: date, summaries: list[SourceSummary]) -> Batch:
    """The manifest's entry for this ingest: counts from the rows written, each source's ledger."""
    reasons = dict(
        con.execute(
            "SELECT reason, count(*) FROM (SELECT unnest(reasons) AS reason FROM rejected) "
            "GROUP BY reason ORDER BY count(*) DESC, reason"
        ).fetchall()
    )
    return Batch(
        id=writer.batch_id,
        ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
        sources=[s.path for s in summaries],
        read=sum(s.rows for s in summaries),
        accepted=sum(s.accepted for s in summaries),
        quarantined=sum(s.quarantined for s in summaries),
        reasons=reasons,
        events_file=writer.events_file,
        quarantine_file=writer.quarantine_file,
        extra={
            "as_of": as_of.isoformat(),
            "ignored_columns": sorted({c for s in summaries for c in s.ignored_columns}),
            "source_ledgers": [_ledger_entry(s) for s in summaries],
        },
    )


class RowsLost(UnreadableFile):
    """The rows written do not account for every record a file holds: nothing is committed."""


def _account_for_every_row(con, sources: list[Source], written: int, files: list[Path]) -> None:
    """Count, per source, the rows written to events and to the quarantine, and check each record of
    each source (counted from the file itself: its lines for CSV, its footer for Parquet) is one of them.

    The counts come from the written rows, not from the parser: ``accepted`` is no longer
    ``read − quarantined``, so a row lost between reading and writing cannot go unnoticed.
    """
    rid_shift = reading.RID_SHIFT
    counts = dict.fromkeys(range(len(sources)), (0, 0))
    for index, kept, dropped in con.execute(
        f"SELECT rid >> {rid_shift}, count(*) FILTER (WHERE NOT dropped), count(*) FILTER (WHERE dropped) FROM ("
        "  SELECT rid, false AS dropped FROM checked WHERE row_ok AND rid NOT IN (SELECT rid FROM rejected)"
        "  UNION ALL SELECT rid, true FROM rejected) GROUP BY 1"
    ).fetchall():
        counts[index] = (kept, dropped)
    for index, source in enumerate(sources):
        source.summary.accepted, source.summary.quarantined = counts[index]
    accepted = sum(s.summary.accepted for s in sources)
    lost = [s.summary for s in sources if s.summary.accepted + s.summary.quarantined != s.summary.rows]
    if accepted != written or lost:
        for path in files:
            path.unlink(missing_ok=True)
        s = lost[0] if lost else sources[0].summary
        raise RowsLost(
            f"{s.path}: {s.rows:,} records in the file but {s.accepted:,} accepted + {s.quarantined:,} quarantined "
            f"({written:,} written); nothing committed"
        )


def _ledger_entry(summary: SourceSummary) -> dict[str, object]:
    """One source's accounting for the manifest: its records, where each went, and its line ledger."""
    entry: dict[str, object] = {
        "path": summary.path,
        "format": summary.format,
        "records": summary.rows,
        "accepted": summary.accepted,
        "quarantined": summary.quarantined,
        "normalised": summary.normalised,
        "notes": summary.notes(),
    }
    if summary.lines is not None:
        entry["lines"] = summary.lines
    return entry
