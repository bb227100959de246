"""Ingest activity files into the event store as one submission: validate, quarantine, pseudonymise,
version, commit.

The whole ingest is a handful of DuckDB statements over all the rows at once (no Python loop per
row). The invariant everything else relies on, for every submission:

    read = accepted (new + corrected + withdrawn + unchanged) + quarantined

Steps: skip files already submitted (same SHA-256: a no-op) → check every file can be read (an
unreadable file stops the ingest before anything is written; Parquet is judged where it lies, CSV is
parsed once into a temporary table) → single-row rules and pseudonymised NHS numbers (HMAC, in SQL)
→ each valid row against the store: new, a correction of the provider's current version (same
``record_id``), unchanged, a withdrawal (``action = withdraw``), or an error (another provider's
record id, a duplicate within the submission, nothing to withdraw) → the cross-row rules (pathway
events before the patient's first referral; events after death) re-evaluated over every current
version of each patient the submission touches, so an event held back earlier is released when the
referral it needed arrives, whatever the order → write the batch's Parquet files and its state file
(what is no longer current) → commit the manifest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from carecontract.records import duck, nhs_number, reading, schema, validation
from carecontract.records.pseudonymise import PseudonymKey, load_key, pseudonym_sql
from carecontract.records.reading import (
    Source,
    SourceSummary,
    UnreadableFile,
    create_raw_view,
    load_source,
    unreadable_source,
)
from carecontract.records.store import EVENT_COLUMNS, STATE_COLUMNS, Batch, Store, StoreError, state_sql

Progress = Callable[[str, float], None]


@dataclass
class IngestResult:
    """What one ingest did. ``as_dict`` is the CLI's ``--json`` output."""

    read: int
    accepted: int
    quarantined: int
    reasons: dict[str, int]
    batch_id: str | None
    store: str
    sources: list[SourceSummary] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # new, corrected, withdrawn, unchanged, held, released ...
    skipped: dict[str, str] = field(default_factory=dict)  # file already submitted → the submission that brought it

    @property
    def no_op(self) -> bool:
        """Every file had been submitted before: nothing was read or committed."""
        return self.batch_id is None

    def as_dict(self) -> dict[str, object]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "reasons": self.reasons,
            "batch_id": self.batch_id,
            "store": self.store,
            "counts": self.counts,
            "skipped": self.skipped,
            "no_op": self.no_op,
            "sources": [{**s.__dict__, "notes": s.notes()} for s in self.sources],
        }


#: What happened to each row of a submission; the first four are "accepted".
ACCEPTED_OUTCOMES = ("new", "corrected", "withdrawn", "unchanged")
HELD = "held"  # valid, stored as a version, but a cross-row rule keeps it out of the figures (quarantined)
REJECTED = "rejected"  # quarantined as read
#: Columns whose values make a version: a resubmission equal on all of them is "unchanged".
CONTENT_COLUMNS = tuple(c for c in EVENT_COLUMNS if c not in ("batch_id", "source_file", "source_row", "source_line"))


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class ConcurrentSubmission(StoreError):
    """The same file was committed by another ingest while this one was reading it."""


def _typed_select() -> str:
    """The event store's typed columns from the normalised ones (TRY_CAST: bad rows pass through too)."""
    cast = {
        "record_id": "n_record_id",
        "patient_id": "patient_id",
        "event_date": validation.EVENT_DATE,
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


def _normalised_from(table: str, nhs: bool = True) -> str:
    """The rows of ``table`` (source relation columns) with every column normalised (``n_*``).

    ``nhs=False`` leaves ``n_nhs_number`` out, for a caller that takes it from ``pseudonyms``
    (normalised there once per distinct value)."""
    columns = schema.ALL_COLUMNS if nhs else [c for c in schema.ALL_COLUMNS if c != "nhs_number"]
    normalised = ", ".join(validation.normalise_sql(c) for c in columns)
    return (
        f"SELECT *, {validation.EVENT_DATE_SQL} AS {validation.EVENT_DATE} FROM ("
        f"SELECT rid, source_index, source_file, raw_line, read_reason, nhs_number AS nhs_raw, source_row, "
        f"source_line, {normalised} FROM {table})"
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
    """Validate ``files`` and commit them to ``store`` as one submission (one atomic batch).

    Files whose exact bytes were submitted before are skipped; if every file was, nothing is done
    (``result.no_op``).
    """
    store = Store(store.root if isinstance(store, Store) else store)  # a writer goes on from the latest
    key = key or load_key()
    store.check_key(key.fingerprint)
    as_of = as_of or date.today()
    report = progress or (lambda step, done: None)
    hashes = {Path(f): file_sha256(Path(f)) for f in files if Path(f).is_file()}
    known = store.file_hashes()
    skipped = {str(p): known[h] for p, h in hashes.items() if h in known}
    paths, taken = [], set()
    for path in map(Path, files):  # the same bytes twice in one submission (two names, or one twice): once
        if path in paths:
            continue
        if str(path) in skipped or (path in hashes and hashes[path] in taken):
            skipped.setdefault(str(path), "this submission")
            continue
        taken.add(hashes.get(path))
        paths.append(path)
    if not paths:
        return IngestResult(0, 0, 0, {}, None, str(store.root), [], {}, skipped)

    con = duck.connect()  # bounded memory, spills to its own folder; no progress bar (we draw our own)
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
            raced = {str(p): b for p in paths if (b := store.file_hashes().get(hashes.get(p, "")))}
            if raced:
                path, batch = next(iter(raced.items()))
                raise ConcurrentSubmission(
                    f"{path}: submitted by another ingest ({batch}) while this one read it; nothing committed"
                )
            store.connect(con)
            file_hashes = [hashes[p] for p in paths if p in hashes]
            try:
                result = _judge_and_write(con, store, writer, key, as_of, sources, report, file_hashes)
            except duckdb.Error as exc:
                raise unreadable_source(con, sources, exc) from exc
        result.skipped = skipped
        return result
    finally:
        con.close()


def _judge_and_write(
    con, store, writer, key, as_of, sources: list[Source], report, file_hashes: list[str]
) -> IngestResult:
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
    _classify(con, writer.batch_id)
    _re_evaluate(con, writer.batch_id)
    _collect_rejected(con, params)
    report("cross-check", 1.0)
    report("write", 0.0)
    written = _write_batch(con, writer, report)
    state_rows = _write_state(con, writer, store.state_file() if store.committed() else None)
    report("write", 1.0)
    files = [writer.path(f) for f in (writer.events_file, writer.quarantine_file, writer.state_file)]
    _account_for_every_row(con, sources, written, files)
    batch = _batch_record(con, writer, as_of, [s.summary for s in sources], file_hashes, state_rows)
    report("commit", 0.0)
    writer.commit(batch, key.fingerprint)
    report("commit", 1.0)
    summaries = [s.summary for s in sources]
    return IngestResult(
        batch.read,
        batch.accepted,
        batch.quarantined,
        batch.reasons,
        writer.batch_id,
        str(store.root),
        summaries,
        batch.extra["counts"],
    )


def _pseudonymise(con, key: PseudonymKey) -> None:
    """NHS numbers normalised, checked and hashed once per distinct raw value, not once per row.

    Every distinct raw value gets a row (its normalised form, and its pseudonym when valid, else
    NULL), so the rows take ``n_nhs_number`` from here too rather than normalising it again each.
    """
    con.execute(
        f"CREATE TEMP TABLE pseudonyms AS SELECT nhs_raw, n_nhs_number, CASE WHEN "
        f"{nhs_number.valid_sql('n_nhs_number')} THEN {pseudonym_sql('n_nhs_number')} END AS patient_id "
        f"FROM (SELECT nhs_raw, {validation.normal_form_sql('nhs_number', 'nhs_raw')} AS n_nhs_number "
        "      FROM (SELECT DISTINCT nhs_number AS nhs_raw FROM raw WHERE nhs_number IS NOT NULL))",
        {"opad": key.outer_pad, "ipad": key.inner_pad},
    )


def _check_rows(con, params: dict, batch_id: str) -> None:
    """One pass: every row normalised, typed and judged by the row rules with a single boolean."""
    con.execute(f"CREATE TEMP VIEW norm AS {_normalised_from('raw', nhs=False)}")
    nhs_rules = ("invalid_nhs_number", "missing_nhs_number")  # judged by the pseudonym join instead
    # a withdrawal needs no NHS number, but one given must be valid
    has_patient = f"(patient_id IS NOT NULL OR coalesce({validation.WITHDRAWAL} AND n_nhs_number IS NULL, false))"
    row_ok = f"read_reason IS NULL AND NOT {validation.any_broken_sql(skip=nhs_rules)} AND {has_patient}"
    con.execute(
        f"CREATE TEMP TABLE checked AS SELECT rid, source_index, {_typed_select()}, "
        f"coalesce({validation.WITHDRAWAL}, false) AS withdraw, {row_ok} AS row_ok "
        "FROM (SELECT n.*, p.n_nhs_number, p.patient_id FROM norm n LEFT JOIN pseudonyms p USING (nhs_raw))",
        {**params, "batch_id": batch_id},
    )


def _classify(con, batch_id: str) -> None:
    """Each valid row against the submission and the store: what it does to the record it names.

    ``outcomes`` gets one row per valid row that is *not* simply new: corrected (the provider's
    current version differs), unchanged (equal on every field), withdrawn, or rejected with a reason
    (a duplicate within the submission: first valid copy in file order wins; a record id another
    provider submitted; a withdrawal of a record the provider has no current version of). Every
    other valid row is new: listing only the exceptions keeps a first submission of millions of
    rows as cheap as an append (``written`` is the view of the rows that become versions).
    """
    con.execute(
        "CREATE TEMP VIEW ids AS SELECT rid, record_id AS rec, provider_code AS provider, withdraw, "
        "source_index, source_row FROM checked WHERE row_ok"
    )
    con.execute(
        "CREATE TEMP TABLE duplicates AS SELECT rid FROM ("
        "  SELECT rid, row_number() OVER (PARTITION BY rec ORDER BY source_index, source_row) AS copy "
        "  FROM ids WHERE rec IN (SELECT rec FROM ids GROUP BY rec HAVING count(*) > 1)) WHERE copy > 1"
    )
    # every provider that ever submitted each record id named here (superseded and withdrawn versions too)
    con.execute(
        "CREATE TEMP TABLE owners AS SELECT record_id, list(DISTINCT provider_code) AS providers "
        "FROM all_events WHERE record_id IN (SELECT rec FROM ids) GROUP BY record_id"
    )
    con.execute("CREATE TEMP TABLE prior AS SELECT * FROM versions WHERE record_id IN (SELECT rec FROM ids)")
    same = " AND ".join(f"c.{col} IS NOT DISTINCT FROM p.{col}" for col in CONTENT_COLUMNS)
    con.execute(
        "CREATE TEMP TABLE outcomes AS SELECT c.rid, c.record_id AS rec, c.patient_id, c.event_type AS t, "
        "c.event_date AS d, p.batch_id AS prior_batch, p.patient_id AS prior_patient, "
        f"CASE WHEN dup.rid IS NOT NULL THEN '{validation.DUPLICATE_RECORD_ID}' "
        "  WHEN len(list_filter(o.providers, lambda x: x <> c.provider_code)) > 0 "
        f"    THEN '{validation.OTHER_PROVIDERS_RECORD}' "
        f"  WHEN c.withdraw AND p.record_id IS NULL THEN '{validation.NOTHING_TO_WITHDRAW}' END AS reason, "
        f"CASE WHEN reason IS NOT NULL THEN '{REJECTED}' WHEN c.withdraw THEN 'withdrawn' "
        f"  WHEN p.record_id IS NULL THEN 'new' WHEN {same} THEN 'unchanged' ELSE 'corrected' END AS outcome "
        "FROM checked c LEFT JOIN prior p ON p.record_id = c.record_id "
        "LEFT JOIN owners o ON o.record_id = c.record_id LEFT JOIN duplicates dup ON dup.rid = c.rid "
        "WHERE c.row_ok AND (c.withdraw OR dup.rid IS NOT NULL OR o.record_id IS NOT NULL)"
    )
    not_versions = "', '".join((REJECTED, "unchanged", "withdrawn"))
    con.execute(
        "CREATE TEMP VIEW written AS SELECT rid, record_id AS rec, patient_id, event_type AS t, event_date AS d "
        f"FROM checked WHERE row_ok AND rid NOT IN (SELECT rid FROM outcomes WHERE outcome IN ('{not_versions}'))"
    )


def _re_evaluate(con, batch_id: str) -> None:
    """The cross-row rules over every current version of each patient this submission touches.

    A patient is touched by a new or corrected row about them, or by a version of theirs being
    superseded or withdrawn. Their whole current timeline (the store's versions that stay current,
    and this submission's new versions) is judged again: a pathway event before the patient's first
    referral, or any event after their death, is *held* (kept as a version, out of the figures, on
    the open quarantine list); one no longer breaking a rule is released. Because the verdict depends
    only on the current versions, the store ends the same whatever order the submissions came in.
    """
    con.execute(
        "CREATE TEMP TABLE replaced AS SELECT prior_batch AS batch_id, rec AS record_id, prior_patient AS patient_id, "
        "CASE outcome WHEN 'withdrawn' THEN 'withdrawn' ELSE 'superseded' END AS status "
        "FROM outcomes WHERE outcome IN ('corrected', 'withdrawn')"
    )
    # the store's current versions of the touched patients (none to read into an empty store)
    earlier = "SELECT * FROM versions WHERE false"
    if con.execute("SELECT count(*) FROM batches").fetchone()[0]:
        con.execute(
            "CREATE TEMP TABLE touched AS SELECT DISTINCT patient_id FROM written UNION SELECT patient_id FROM replaced"
        )
        earlier = "SELECT * FROM versions WHERE patient_id IN (SELECT patient_id FROM touched)"
    con.execute(
        "CREATE TEMP TABLE earlier AS SELECT v.batch_id, v.record_id, v.patient_id, v.event_type AS t, "
        f"v.event_date AS d, CAST(NULL AS BIGINT) AS rid FROM ({earlier}) v "
        "ANTI JOIN replaced r ON v.batch_id = r.batch_id AND v.record_id = r.record_id"
    )
    con.execute(  # the batch id is ours (a timestamp and hex digits), safe to inline in a view
        f"CREATE TEMP VIEW pool AS SELECT * FROM earlier "
        f"UNION ALL SELECT '{batch_id}', rec, patient_id, t, d, rid FROM written"
    )
    con.execute(
        "CREATE TEMP TABLE timeline AS SELECT patient_id, "
        "min(d) FILTER (WHERE t = 'referral') AS first_referral, min(d) FILTER (WHERE t = 'death') AS death "
        "FROM pool WHERE t IN ('referral', 'death') GROUP BY patient_id"
    )
    pathway = ", ".join(f"'{e}'" for e in schema.PATHWAY_EVENTS)
    before = f"(p.t IN ({pathway}) AND p.d < l.first_referral)"
    con.execute(
        "CREATE TEMP TABLE verdicts AS SELECT p.batch_id, p.record_id, p.rid, list_filter(["
        f"  CASE WHEN {before} THEN '{validation.BEFORE_FIRST_REFERRAL}' END, "
        f"  CASE WHEN p.d > l.death THEN '{validation.AFTER_DEATH}' END], lambda x: x IS NOT NULL) AS reasons "
        f"FROM pool p JOIN timeline l USING (patient_id) WHERE {before} OR p.d > l.death"
    )
    con.execute(f"UPDATE outcomes SET outcome = '{HELD}' WHERE rid IN (SELECT rid FROM verdicts)")
    con.execute(
        f"INSERT INTO outcomes (rid, outcome) SELECT rid, '{HELD}' FROM verdicts "
        "WHERE rid IS NOT NULL AND rid NOT IN (SELECT rid FROM outcomes)"
    )


def _write_state(con, writer, previous: Path | None) -> dict[str, int]:
    """Write the submission's state file: the previous list of rows not current, with this
    submission's changes (versions replaced, holds re-judged, quarantine rows resolved).

    Returns how many earlier events were released from hold, or newly put on it.
    """
    cols = ", ".join(STATE_COLUMNS)
    con.execute(f"CREATE TEMP TABLE old_state AS {state_sql(previous)}")
    con.execute(
        "CREATE TEMP TABLE old_held AS SELECT batch_id, record_id, by_batch FROM old_state "
        "WHERE kind = 'event' AND status = 'held'"
    )
    con.execute(
        "CREATE TEMP TABLE new_state AS "
        # earlier decisions about rows this submission does not re-judge stand
        "SELECT s.* FROM old_state s ANTI JOIN (SELECT batch_id, record_id FROM earlier "
        "  UNION ALL SELECT batch_id, record_id FROM replaced) k "
        "  ON s.kind = 'event' AND s.batch_id = k.batch_id AND s.record_id = k.record_id "
        "UNION ALL SELECT 'event', batch_id, record_id, status, $batch_id, CAST(NULL AS VARCHAR[]) FROM replaced "
        # a hold that stands keeps the submission that first made it
        "UNION ALL SELECT 'event', v.batch_id, v.record_id, 'held', coalesce(h.by_batch, $batch_id), v.reasons "
        "  FROM verdicts v LEFT JOIN old_held h ON h.batch_id = v.batch_id AND h.record_id = v.record_id "
        # an open quarantine row is resolved when the record it names is resubmitted: accepted (or held),
        # it leaves the open list; rejected again, the new row takes its place there
        "UNION ALL SELECT DISTINCT 'quarantine', q.batch_id, trim(q.record_id), 'resolved', $batch_id, "
        "  CAST(NULL AS VARCHAR[]) FROM quarantine_rows q "
        "  WHERE trim(q.record_id) IN (SELECT record_id FROM checked)",
        {"batch_id": writer.batch_id},
    )
    path = writer.path(writer.state_file)
    con.execute(f"COPY (SELECT {cols} FROM new_state) TO '{path}' (FORMAT parquet, COMPRESSION zstd)")
    released, newly_held = con.execute(
        "SELECT (SELECT count(*) FROM old_held h SEMI JOIN earlier p "
        "   ON h.batch_id = p.batch_id AND h.record_id = p.record_id "
        "   ANTI JOIN verdicts v ON h.batch_id = v.batch_id AND h.record_id = v.record_id), "
        "(SELECT count(*) FROM (SELECT * FROM verdicts WHERE rid IS NULL) v ANTI JOIN old_held h "
        "   ON h.batch_id = v.batch_id AND h.record_id = v.record_id)"
    ).fetchone()
    return {"released": released, "newly_held": newly_held}


def _collect_rejected(con, params: dict) -> None:
    """The rows that failed anything, as read, and every reason each failed.

    One more scan of the sources (for Parquet, the only other read of the files) keeps the failed rows;
    only for these are the row rules' reasons listed. Held rows are not here: they are valid
    versions, written with the events and held by the state file.
    """
    con.execute(
        "CREATE TEMP TABLE rejected_cross AS SELECT rid, [reason] AS reasons FROM outcomes "
        f"WHERE outcome = '{REJECTED}'"
    )
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


def _write_batch(con, writer, report) -> tuple[int, int]:
    """Write the new versions (new, corrected and held rows; any order) and the quarantine (file order);
    return the rows written to each."""
    events_path = writer.path(writer.events_file)
    quarantine_path = writer.path(writer.quarantine_file)
    not_written = "', '".join((REJECTED, "unchanged", "withdrawn"))
    events = con.execute(
        f"COPY (SELECT {', '.join(EVENT_COLUMNS)} FROM checked "
        f"WHERE row_ok AND rid NOT IN (SELECT rid FROM outcomes WHERE outcome IN ('{not_written}'))) "
        f"TO '{events_path}' (FORMAT parquet, COMPRESSION zstd)"
    ).fetchall()[0][0]
    report("write", 0.5)
    quarantined = con.execute(
        f"COPY (SELECT {_quarantine_select()} FROM suspects "
        "JOIN rejected USING (rid) "
        "LEFT JOIN (SELECT rid, patient_id FROM checked) c USING (rid) ORDER BY source_index, source_row) "
        f"TO '{quarantine_path}' (FORMAT parquet, COMPRESSION zstd)",
        {"batch_id": writer.batch_id},
    ).fetchall()[0][0]
    return events, quarantined


def _batch_record(
    con, writer, as_of: date, summaries: list[SourceSummary], file_hashes: list[str], state: dict[str, int]
) -> Batch:
    """The manifest's entry for this ingest: counts from the rows written, each source's ledger."""
    reasons = dict(
        con.execute(
            "SELECT reason, count(*) FROM (SELECT unnest(reasons) AS reason FROM rejected "
            "  UNION ALL SELECT unnest(reasons) FROM verdicts WHERE rid IS NOT NULL) "
            "GROUP BY reason ORDER BY count(*) DESC, reason"
        ).fetchall()
    )
    counts = {k: sum(s.outcomes.get(k, 0) for s in summaries) for k in (*ACCEPTED_OUTCOMES, HELD, REJECTED)}
    providers = [
        r[0] for r in con.execute("SELECT DISTINCT provider_code FROM checked WHERE row_ok ORDER BY 1").fetchall()
    ]
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
            "providers": providers,
            "counts": {**counts, "quarantined": counts[HELD] + counts[REJECTED], **state},
            "file_hashes": file_hashes,
            "state_file": writer.state_file,
            "ignored_columns": sorted({c for s in summaries for c in s.ignored_columns}),
            "source_ledgers": [_ledger_entry(s) for s in summaries],
        },
    )


class RowsLost(UnreadableFile):
    """The rows written do not account for every record a file holds: nothing is committed."""


def _account_for_every_row(con, sources: list[Source], written: tuple[int, int], files: list[Path]) -> None:
    """Count, per source, what happened to its rows, and check each record of each source (counted
    from the file itself: its lines for CSV, its footer for Parquet) is exactly one of them, and that
    the rows written to the events and quarantine files are exactly those that should be.

    ``accepted`` is not ``read − quarantined``: a row lost between reading and writing cannot go unnoticed.
    """
    rid_shift = reading.RID_SHIFT
    outcomes: dict[int, dict[str, int]] = {i: {} for i in range(len(sources))}
    # valid rows per source, less those with another outcome (rejected by a cross-row check too), are new
    for index, outcome, n in con.execute(
        f"SELECT rid >> {rid_shift}, 'new', count(*) FROM checked WHERE row_ok GROUP BY ALL "
        f"UNION ALL SELECT rid >> {rid_shift}, 'new', -count(*) FROM outcomes GROUP BY ALL "
        f"UNION ALL SELECT rid >> {rid_shift}, outcome, count(*) FROM outcomes WHERE outcome <> '{REJECTED}' "
        "GROUP BY ALL "
        f"UNION ALL SELECT rid >> {rid_shift}, '{REJECTED}', count(*) FROM rejected GROUP BY ALL"
    ).fetchall():
        outcomes[index][outcome] = outcomes[index].get(outcome, 0) + n
    for index, source in enumerate(sources):
        got = outcomes[index]
        source.summary.outcomes = got
        source.summary.accepted = sum(got.get(k, 0) for k in ACCEPTED_OUTCOMES)
        source.summary.quarantined = got.get(HELD, 0) + got.get(REJECTED, 0)
    total = {k: sum(o.get(k, 0) for o in outcomes.values()) for k in (*ACCEPTED_OUTCOMES, HELD, REJECTED)}
    events, quarantined = written
    lost = [s.summary for s in sources if s.summary.accepted + s.summary.quarantined != s.summary.rows]
    if events != total["new"] + total["corrected"] + total[HELD] or quarantined != total[REJECTED] or lost:
        for path in files:
            path.unlink(missing_ok=True)
        s = lost[0] if lost else sources[0].summary
        raise RowsLost(
            f"{s.path}: {s.rows:,} records in the file but {s.accepted:,} accepted + {s.quarantined:,} quarantined "
            f"({events:,} versions and {quarantined:,} quarantine rows written); nothing committed"
        )


def _ledger_entry(summary: SourceSummary) -> dict[str, object]:
    """One source's accounting for the manifest: its records, where each went, and its line ledger."""
    entry: dict[str, object] = {
        "path": summary.path,
        "format": summary.format,
        "records": summary.rows,
        "accepted": summary.accepted,
        "quarantined": summary.quarantined,
        "outcomes": summary.outcomes,
        "normalised": summary.normalised,
        "notes": summary.notes(),
    }
    if summary.lines is not None:
        entry["lines"] = summary.lines
    return entry
