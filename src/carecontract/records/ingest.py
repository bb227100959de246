"""Ingest activity files into the event store: validate, quarantine, pseudonymise, commit.

The whole ingest is a handful of DuckDB statements over all the rows at once (no Python loop per
row), so a million rows take about a second. The invariant everything else relies on:

    read = accepted + quarantined          (for every ingest, and so for the store)

Steps: read every file as text (an unreadable file stops the ingest before anything is written)
→ single-row rules → pseudonymise NHS numbers (HMAC, in SQL) → cross-row rules (duplicate
record ids within the ingest and against the store; pathway events before the patient's first
referral; events after death) → write the batch's Parquet files → commit the manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from carecontract.records import schema, validation
from carecontract.records.pseudonymise import PseudonymKey, load_key, pseudonym_sql
from carecontract.records.reading import SourceSummary, create_raw_table, load_source
from carecontract.records.store import EVENT_COLUMNS, Batch, Store

Progress = Callable[[str, float], None]
STEPS = ("read", "validate", "pseudonymise", "cross-check", "write", "commit")


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
            "sources": [s.__dict__ for s in self.sources],
        }


def _typed_select() -> str:
    cast = {
        "record_id": "n_record_id",
        "patient_id": "patient_id",
        "event_date": "CAST(n_event_date AS DATE)",
        "tumour_site": schema.tumour_site_sql("n_icd10"),
        "batch_id": "$batch_id",
        "source_file": "source_file",
        "source_row": "source_row",
    }
    parts = []
    for column, sql_type in EVENT_COLUMNS.items():
        expr = cast.get(column, f"n_{column}")
        parts.append(f"CAST({expr} AS {sql_type}) AS {column}")
    return ", ".join(parts)


def _quarantine_select() -> str:
    raw = [c for c in schema.ALL_COLUMNS if c != "nhs_number"]
    return (
        ", ".join(raw)
        # the raw NHS number is kept only where that field itself failed validation
        + ", CASE WHEN patient_id IS NULL THEN nhs_number END AS nhs_number, patient_id, reasons, raw_line, "
        "$batch_id AS batch_id, source_file, source_row"
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
    try:
        report("read", 0.0)
        create_raw_table(con)
        sources = []
        for index, path in enumerate(paths):
            sources.append(load_source(con, path, "raw", index))
            report("read", (index + 1) / len(paths))
        with store.writer() as writer:
            store.connect(con)
            result = _judge_and_write(con, store, writer, key, as_of, sources, report)
        return result
    finally:
        con.close()


def _judge_and_write(con, store, writer, key, as_of, sources, report) -> IngestResult:
    params = {"today": as_of}
    normalised = ", ".join(validation.normalise_sql(c) for c in schema.ALL_COLUMNS)
    report("validate", 0.0)
    con.execute(
        f"CREATE TEMP TABLE checked AS SELECT *, CASE WHEN raw_line IS NOT NULL THEN ['malformed_row'] "
        f"ELSE {validation.reasons_sql()} END AS row_reasons FROM (SELECT *, {normalised} FROM raw)",
        params,
    )
    report("validate", 1.0)

    report("pseudonymise", 0.0)
    nhs_ok = "NOT list_has_any(row_reasons, ['missing_nhs_number', 'invalid_nhs_number', 'malformed_row'])"
    con.execute(
        f"CREATE TEMP TABLE pseudonyms AS SELECT n_nhs_number, {pseudonym_sql('n_nhs_number')} AS patient_id "
        f"FROM (SELECT DISTINCT n_nhs_number FROM checked WHERE {nhs_ok})",
        {"opad": key.outer_pad, "ipad": key.inner_pad},
    )
    report("pseudonymise", 1.0)

    report("cross-check", 0.0)
    con.execute(
        "CREATE TEMP TABLE candidates AS SELECT c.* EXCLUDE (n_nhs_number), p.patient_id, "
        "CASE WHEN len(c.row_reasons) = 0 THEN "
        "  row_number() OVER (PARTITION BY c.n_record_id, len(c.row_reasons) = 0 "
        "                     ORDER BY c.source_index, c.source_row) > 1 "
        "  OR c.n_record_id IN (SELECT record_id FROM events) "
        "ELSE false END AS is_duplicate "
        "FROM checked c LEFT JOIN pseudonyms p ON c.n_nhs_number = p.n_nhs_number"
    )
    con.execute(
        "CREATE TEMP TABLE timeline AS SELECT patient_id, "
        "min(d) FILTER (WHERE t = 'referral') AS first_referral, min(d) FILTER (WHERE t = 'death') AS death "
        "FROM (SELECT patient_id, CAST(n_event_date AS DATE) AS d, n_event_type AS t FROM candidates "
        "      WHERE len(row_reasons) = 0 AND NOT is_duplicate AND n_event_type IN ('referral', 'death') "
        "      UNION ALL SELECT patient_id, event_date, event_type FROM events "
        "      WHERE event_type IN ('referral', 'death') "
        "        AND patient_id IN (SELECT patient_id FROM pseudonyms)) "
        "GROUP BY patient_id"
    )
    pathway = ", ".join(f"'{e}'" for e in schema.PATHWAY_EVENTS)
    con.execute(
        "CREATE TEMP TABLE judged AS SELECT c.*, list_concat(c.row_reasons, "
        "  CASE WHEN c.is_duplicate THEN ['duplicate_record_id'] ELSE [] END, "
        f"  CASE WHEN len(c.row_reasons) = 0 AND NOT c.is_duplicate AND c.n_event_type IN ({pathway}) "
        "       AND CAST(c.n_event_date AS DATE) < t.first_referral THEN ['before_first_referral'] ELSE [] END, "
        "  CASE WHEN len(c.row_reasons) = 0 AND NOT c.is_duplicate "
        "       AND CAST(c.n_event_date AS DATE) > t.death THEN ['after_death'] ELSE [] END"
        ") AS reasons FROM candidates c LEFT JOIN timeline t ON c.patient_id = t.patient_id"
    )
    report("cross-check", 1.0)

    report("write", 0.0)
    batch_param = {"batch_id": writer.batch_id}
    events_path = writer.path(writer.events_file)
    quarantine_path = writer.path(writer.quarantine_file)
    con.execute(
        f"COPY (SELECT {_typed_select()} FROM judged WHERE len(reasons) = 0) "
        f"TO '{events_path}' (FORMAT parquet, COMPRESSION zstd)",
        batch_param,
    )
    report("write", 0.5)
    con.execute(
        f"COPY (SELECT {_quarantine_select()} FROM judged WHERE len(reasons) > 0) "
        f"TO '{quarantine_path}' (FORMAT parquet, COMPRESSION zstd)",
        batch_param,
    )
    report("write", 1.0)

    read, accepted = con.execute("SELECT count(*), count(*) FILTER (WHERE len(reasons) = 0) FROM judged").fetchone()
    reasons = dict(
        con.execute(
            "SELECT reason, count(*) FROM (SELECT unnest(reasons) AS reason FROM judged) "
            "GROUP BY reason ORDER BY count(*) DESC, reason"
        ).fetchall()
    )
    batch = Batch(
        id=writer.batch_id,
        ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
        sources=[s.path for s in sources],
        read=read,
        accepted=accepted,
        quarantined=read - accepted,
        reasons=reasons,
        events_file=writer.events_file,
        quarantine_file=writer.quarantine_file,
        extra={
            "as_of": as_of.isoformat(),
            "ignored_columns": sorted({c for s in sources for c in s.ignored_columns}),
        },
    )
    report("commit", 0.0)
    writer.commit(batch, key.fingerprint)
    report("commit", 1.0)
    return IngestResult(read, accepted, read - accepted, reasons, writer.batch_id, str(store.root), sources)
