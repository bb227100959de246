"""Read activity files (CSV or Parquet) into DuckDB as text, exactly as written.

Everything is read as VARCHAR so that a bad value survives to the quarantine unchanged: the
validator, not the reader, decides what a value means. A CSV line that cannot be split into the
header's columns is kept too (DuckDB's reject tables), so every line of the file is accounted for.

A file that cannot be read at all raises :class:`UnreadableFile` before anything is written.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from carecontract.errors import UserError
from carecontract.records import lines
from carecontract.records import validation as validation_reasons
from carecontract.records.schema import ALL_COLUMNS, REQUIRED_COLUMNS

PARQUET_MAGIC = b"PAR1"


class UnreadableFile(UserError):
    """A whole file is unusable; the message is one line a user can act on."""


@dataclass
class SourceSummary:
    path: str
    format: str
    rows: int
    malformed: int
    ignored_columns: list[str]
    lines: dict[str, object] | None = None  # the CSV file's own line ledger (records.lines), CSV only
    normalised: bool = False  # read through a normalised copy (mixed line ends, stray quotes, long records)
    accepted: int = 0
    quarantined: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # new, corrected, withdrawn, unchanged, held, rejected

    @property
    def mixed_line_endings(self) -> bool:
        return lines.mixed((self.lines or {}).get("line_endings") or {})  # type: ignore[arg-type]

    def notes(self) -> list[str]:
        """What a user should know about how this file was read (one short sentence each)."""
        out = []
        if self.mixed_line_endings:
            out.append(f"mixed line endings {self.lines['line_endings']}: read through a normalised copy")
        for s in (self.lines or {}).get("stray_quotes") or []:  # type: ignore[union-attr]
            out.append(
                f"line {s['opened_at_line']:,} opens a quoted field that would swallow lines "
                f"{s['first_line']:,}–{s['last_line']:,}; each is quarantined on its own line"
            )
        return out


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def detect_format(path: Path) -> str:
    """'parquet' or 'csv' from the file's bytes (not trusting its name); raise if neither."""
    if not path.exists():
        raise UnreadableFile(f"{path}: no such file")
    if path.is_dir():
        raise UnreadableFile(f"{path}: is a directory, expected a CSV or Parquet file")
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head:
        raise UnreadableFile(f"{path}: file is empty")
    if head[:4] == PARQUET_MAGIC:
        return "parquet"
    if b"\0" in head:
        raise UnreadableFile(f"{path}: not a CSV or Parquet file (binary content)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character may be cut at the 4096th byte; only fail on real garbage
        try:
            head[:-4].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnreadableFile(f"{path}: not a UTF-8 CSV file ({exc.reason})") from exc
    return "csv"


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        try:
            header = next(csv.reader(handle))
        except StopIteration as exc:
            raise UnreadableFile(f"{path}: file is empty") from exc
        except csv.Error as exc:
            raise UnreadableFile(f"{path}: cannot read the CSV header ({exc})") from exc
    return [h.strip() for h in header]


def _check_columns(path: Path, columns: list[str]) -> tuple[dict[str, str], list[str]]:
    """The file's columns by normalised name, and the ones ingest ignores; raise if it cannot be used."""
    normalised = [c.strip().lower() for c in columns]
    duplicated = sorted({c for c in normalised if normalised.count(c) > 1})
    if duplicated:
        raise UnreadableFile(f"{path}: column(s) appear twice in the header: {', '.join(duplicated)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in normalised]
    if missing:
        raise UnreadableFile(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(columns) or 'none'}; required: {', '.join(REQUIRED_COLUMNS)})"
        )
    by_name = dict(zip(normalised, columns, strict=True))
    return by_name, [c for c, n in zip(columns, normalised, strict=True) if n not in ALL_COLUMNS]


#: A source relation's columns are the record's columns as text, then ``raw_line``, ``source_index``,
#: ``source_file``, ``source_row`` and ``rid``. ``rid`` identifies a row across the whole ingest: the
#: source's index in the top bits, the row's position within its source below, so no global
#: numbering (which would serialise the read) is needed.
RID_SHIFT = 40


def _rid_sql(source_index: int, position: str) -> str:
    return f"({source_index}::BIGINT << {RID_SHIFT}) + {position} AS rid"


@dataclass
class Source:
    """One readable file: what the user is told about it, and the SQL that yields its rows as text."""

    summary: SourceSummary
    relation: str


def load_source(con: duckdb.DuckDBPyConnection, path: Path, source_index: int) -> Source:
    """Check ``path`` is readable and return a relation over its rows (all columns text).

    Parquet is not copied: the relation reads the file where it lies (``file_row_number`` gives each
    row's position), so a clean file is decoded once for judging and once more only for the few
    rows quarantined. CSV is parsed once into a temporary table, because the parser's reject
    tables (lines that could not be split) are only available while reading.
    """
    fmt = detect_format(path)
    if fmt == "parquet":
        return _parquet_source(con, path, source_index)
    return _csv_source(con, path, source_index)


def _text_select(by_name: dict[str, str]) -> str:
    return ", ".join(
        (f"CAST({_quote_ident(by_name[c])} AS VARCHAR)" if c in by_name else "NULL::VARCHAR") + f" AS {c}"
        for c in ALL_COLUMNS
    )


def _parquet_source(con: duckdb.DuckDBPyConnection, path: Path, source_index: int) -> Source:
    file = _sql_str(str(path))
    try:
        columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({file})").fetchall()]
        rows = con.execute(f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata({file})").fetchone()[0]
    except duckdb.Error as exc:
        raise UnreadableFile(f"{path}: unreadable Parquet file ({str(exc).splitlines()[0]})") from exc
    by_name, ignored = _check_columns(path, columns)
    if rows == 0:
        raise UnreadableFile(f"{path}: file has a header but no rows")
    relation = (
        f"SELECT {_text_select(by_name)}, NULL::VARCHAR AS raw_line, NULL::VARCHAR AS read_reason, "
        f"NULL::BIGINT AS raw_line_length, NULL::VARCHAR AS raw_line_sha256, {source_index} AS source_index, "
        f"{file} AS source_file, file_row_number + 1 AS source_row, NULL::BIGINT AS source_line, "
        f"{_rid_sql(source_index, 'file_row_number')} "
        f"FROM read_parquet({file}, file_row_number=true)"
    )
    return Source(SourceSummary(str(path), "parquet", rows, 0, ignored), relation)


def _csv_source(con: duckdb.DuckDBPyConnection, path: Path, source_index: int) -> Source:
    """Parse a CSV file into a temporary table and reconcile it with the file's own line ledger.

    The ledger (:mod:`carecontract.records.lines`, counted from the bytes) says which records the
    file holds and where each starts. DuckDB's strict parser splits them into fields: the file
    itself when it is regular, otherwise a normalised copy (every record ended by ``\\n``; stray
    quotes' lines and over-long records left out and quarantined from here). Every parsed row and
    every line the parser rejected is then matched to one record of the ledger; if they cannot be
    matched one to one, the file is refused whole, naming the first line that went missing.
    """
    columns = _csv_header(path)
    by_name, ignored = _check_columns(path, columns)
    try:
        ledger = lines.scan(path, len(columns))
    except lines.NulByte as exc:
        raise UnreadableFile(f"{path}: line {exc.line} holds a NUL byte (binary content); file refused") from exc
    if ledger.records == 0:
        raise UnreadableFile(f"{path}: file has a header but no rows")
    table = f"raw_{source_index}"
    kept = np.flatnonzero(~ledger.excluded_mask())
    parsed_from = path
    with tempfile.TemporaryDirectory(prefix="carecontract-") as tmp:
        if ledger.needs_copy:
            parsed_from = Path(tmp) / "normalised.csv"
            offsets = lines.write_normalised_copy(path, ledger, parsed_from)
        else:
            offsets = ledger.record_byte_start
        _parse_csv(con, path, parsed_from, columns, by_name, source_index)
    rejected = _rejected_records(con, path, source_index, offsets, kept)
    parsed = np.setdiff1d(kept, rejected, assume_unique=True)
    _reconcile(con, path, table, ledger, parsed, [c.strip().lower() for c in columns].index("record_id"))
    linemap = _line_map(con, source_index, ledger, parsed)
    _add_unparsed_rows(con, path, table, columns, ledger, rejected)
    if linemap is None:  # the n-th parsed row is the n-th record, on line n + 1
        position, line, rows = "t.rowid + 1", "t.rowid + 2", f"{table} t"
    else:
        position, line, rows = "m.record + 1", "m.line", f"{table} t LEFT JOIN {linemap} m ON t.rowid = m.rowid"
    relation = (
        f"SELECT {', '.join('t.' + c for c in ALL_COLUMNS)}, t.raw_line, t.read_reason, "
        f"t.raw_line_length, t.raw_line_sha256, {source_index} AS source_index, "
        f"{_sql_str(str(path))} AS source_file, coalesce(t.source_row, {position}) AS source_row, "
        f"coalesce(t.source_line, {line}) AS source_line, {_rid_sql(source_index, 't.rowid')} FROM {rows}"
    )
    malformed = len(rejected) + len(ledger.excluded)
    summary = SourceSummary(
        str(path),
        "csv",
        ledger.records,
        malformed,
        ignored,
        lines=ledger.as_dict(),
        normalised=ledger.needs_copy,
    )
    return Source(summary, relation)


def _parse_csv(
    con, path: Path, parsed_from: Path, columns: list[str], by_name: dict[str, str], source_index: int
) -> None:
    table = f"raw_{source_index}"
    spec = "{" + ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c in columns) + "}"
    reader = (
        f"read_csv({_sql_str(str(parsed_from))}, header=true, delim=',', quote='\"', escape='\"', "
        f"auto_detect=false, columns={spec}, store_rejects=true, "
        f"rejects_table='rejects_{source_index}', rejects_scan='scans_{source_index}', "
        "encoding='utf-8', strict_mode=true, max_line_size=" + str(2 * lines.MAX_RECORD_BYTES) + ")"
    )
    # the table's row ids follow file order (inserts preserve it), so the n-th parsed row is rowid n - 1;
    # numbering rows with a window function here would serialise the read
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {_text_select(by_name)}, NULL::VARCHAR AS raw_line, "
            "NULL::VARCHAR AS read_reason, NULL::BIGINT AS raw_line_length, NULL::VARCHAR AS raw_line_sha256, "
            f"NULL::BIGINT AS source_row, NULL::BIGINT AS source_line FROM {reader}"
        )
    except duckdb.Error as exc:
        raise UnreadableFile(f"{path}: cannot read as CSV ({str(exc).splitlines()[0]})") from exc


def _rejected_records(con, path: Path, source_index: int, offsets: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The records (indices into the ledger) whose lines the parser rejected, found by byte position."""
    positions = np.array(
        [r[0] for r in con.execute(f"SELECT DISTINCT line_byte_position FROM rejects_{source_index}").fetchall()],
        np.int64,
    )
    if not len(positions):
        return np.zeros(0, np.int64)
    # DuckDB 1.4 reports the line's offset 0-based after CRLF line ends and 1-based after LF ones; a
    # record is at least two bytes long, so whichever of the two starts a record is the one
    at = np.searchsorted(offsets, positions, side="right") - 1
    exact = (at >= 0) & (offsets[np.clip(at, 0, None)] == positions)
    before = np.searchsorted(offsets, positions - 1, side="right") - 1
    at = np.where(exact, at, before)
    if (at < 0).any() or (
        (offsets[np.clip(at, 0, None)] != positions) & (offsets[np.clip(at, 0, None)] != positions - 1)
    ).any():
        raise UnreadableFile(f"{path}: a line the CSV parser rejected does not start a record; file refused")
    return np.unique(kept[at])


def _reconcile(con, path: Path, table: str, ledger: lines.LineLedger, parsed: np.ndarray, id_at: int) -> None:
    """Refuse the file unless the parser returned exactly one row for each record it should have."""
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    expected_lines = ledger.record_lines[parsed]
    if rows == len(parsed) and not (expected_lines > 1).any():
        return
    breaks = " + ".join(
        f"coalesce(length(regexp_extract_all({_quote_ident(c)}, '\\r\\n|\\r|\\n')), 0)" for c in ALL_COLUMNS
    )
    got = np.array([r[0] for r in con.execute(f"SELECT 1 + {breaks} FROM {table} ORDER BY rowid").fetchall()])
    common = min(len(got), len(expected_lines))
    differ = np.flatnonzero(got[:common] != expected_lines[:common])
    if rows == len(parsed) and not len(differ):
        return
    first = int(differ[0]) if len(differ) else _first_unmatched_id(con, path, table, ledger, parsed, id_at)
    line = int(ledger.record_start[parsed[first]]) if first < len(parsed) else ledger.physical_lines
    raise UnreadableFile(
        f"{path}: lines could not be reconciled with the CSV parser ({len(parsed):,} records in the file, "
        f"{rows:,} parsed); line {line:,} went missing; file refused, nothing written"
    )


def _first_unmatched_id(con, path: Path, table: str, ledger: lines.LineLedger, parsed: np.ndarray, id_at: int) -> int:
    """The first parsed record whose row is missing, found by record id (read from the record's own bytes)
    against the parser's rows in order. Only run on the way to an error."""
    got = [r[0] for r in con.execute(f"SELECT record_id FROM {table} ORDER BY rowid").fetchall()]
    for k, text in enumerate(lines.record_bytes(path, ledger, [int(i) for i in parsed])):
        fields = next(csv.reader([text.decode("utf-8", errors="replace")]), [])
        wanted = fields[id_at].strip() if id_at < len(fields) else None
        if k >= len(got) or (got[k] or "").strip() != wanted:
            return k
    return len(parsed)


def _line_map(con, source_index: int, ledger: lines.LineLedger, parsed: np.ndarray) -> str | None:
    """A table from parsed row (rowid) to record position and first physical line.

    ``None`` when the n-th parsed row is simply the n-th record on line n + 1 (no blank, multi-line,
    rejected or excluded records): the common case costs no join.
    """
    starts = ledger.record_start[parsed]
    if len(parsed) == ledger.records and (starts == np.arange(2, len(parsed) + 2)).all():
        return None
    name = f"linemap_{source_index}"
    arrow = pa.table(
        {
            "rowid": pa.array(np.arange(len(parsed), dtype=np.int64)),
            "record": pa.array(parsed.astype(np.int64)),
            "line": pa.array(starts.astype(np.int64)),
        }
    )
    _from_arrow(con, arrow, f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM arrow_rows")
    return name


def _from_arrow(con: duckdb.DuckDBPyConnection, arrow: pa.Table, sql: str) -> None:
    """Run ``sql`` with ``arrow`` visible to it as ``arrow_rows`` (rows built in Python: few, or one column)."""
    con.register("arrow_rows", arrow)
    try:
        con.execute(sql)
    finally:
        con.unregister("arrow_rows")


def _add_unparsed_rows(
    con, path: Path, table: str, columns: list[str], ledger: lines.LineLedger, rejected: np.ndarray
) -> None:
    """Quarantine-ready rows for records not parsed: lines the parser rejected and lines left out here.

    Each keeps its own physical line, the text as read (up to :data:`lines.RAW_LINE_KEEP` characters,
    with the whole line's length and SHA-256) with NHS-number-shaped values masked, and what could be
    taken from it by position (record id, provider, commissioner, NHS number for the pseudonym), so
    the provider that sent it can see it and correct it.
    """
    excluded = np.flatnonzero(ledger.excluded_mask())
    indices = sorted({*map(int, rejected), *map(int, excluded)})
    rows = []
    for index, text in zip(indices, lines.record_bytes(path, ledger, indices), strict=True):
        start = int(ledger.record_start[index])
        reason = ledger.excluded.get(start, validation_reasons.MALFORMED_ROW)
        rows.append(_unparsed_row(text, columns, index + 1, start, reason))
    if not rows:
        return
    names = [*rows[0]]
    arrow = pa.table({n: pa.array([r[n] for r in rows]) for n in names})
    _from_arrow(con, arrow, f"INSERT INTO {table} BY NAME SELECT * FROM arrow_rows")


def _unparsed_row(text: bytes, columns: list[str], position: int, line: int, reason: str) -> dict[str, object]:
    decoded = text.decode("utf-8", errors="replace")
    by_position: dict[str, str] = {}
    if len(decoded) <= lines.RAW_LINE_KEEP:
        fields = decoded.split(",")  # a stray quote would make a CSV reader join the fields
        if reason != validation_reasons.UNBALANCED_QUOTE:
            with contextlib.suppress(csv.Error):
                fields = next(csv.reader([decoded.replace("\r", " ").replace("\n", " ")]), [])
        by_position = {c.strip().lower(): v.strip('"') for c, v in zip(columns, fields, strict=False)}
    nhs = NHS_SHAPED.search(decoded)
    return {
        "record_id": by_position.get("record_id"),
        "provider_code": by_position.get("provider_code"),
        "commissioner_code": by_position.get("commissioner_code"),
        "nhs_number": nhs.group(0) if nhs else None,
        "raw_line": NHS_SHAPED.sub(lambda m: NHS_MASK * len(m.group(0)), decoded[: lines.RAW_LINE_KEEP]),
        "read_reason": reason,
        "raw_line_length": len(text),
        "raw_line_sha256": hashlib.sha256(text).hexdigest(),
        "source_row": position,
        "source_line": line,
    }


#: Ten digits, optionally spaced or hyphenated 3-3-4, not inside a longer run of digits.
NHS_SHAPED = re.compile(r"(?<![0-9])[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}(?![0-9])")
NHS_MASK = "#"  # each character of one, so the kept line keeps its length


def unreadable_source(con: duckdb.DuckDBPyConnection, sources: list[Source], error: duckdb.Error) -> Exception:
    """After a query over the sources failed, the :class:`UnreadableFile` for the file at fault.

    A Parquet file's footer is checked up front, but its data pages are first decoded while the
    rows are judged; a damaged page surfaces there. Each Parquet source is then decoded alone to
    name the file (this costs a read, but only on the way to an error). If every source decodes,
    the failure was not the input's and the original error is returned to be raised as it is.
    """
    for source in sources:
        if source.summary.format != "parquet":
            continue
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE decode_probe AS {source.relation}")
        except duckdb.Error as exc:
            detail = str(exc).splitlines()[0]
            return UnreadableFile(f"{source.summary.path}: unreadable Parquet data ({detail})")
        finally:
            con.execute("DROP TABLE IF EXISTS decode_probe")
    return error


def create_raw_view(con: duckdb.DuckDBPyConnection, sources: list[Source], name: str = "raw") -> None:
    """One view over every source's rows, in the columns of a source relation."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS " + " UNION ALL ".join(s.relation for s in sources))


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
