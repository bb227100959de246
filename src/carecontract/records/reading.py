"""Read activity files (CSV or Parquet) into DuckDB as text, exactly as written.

Everything is read as VARCHAR so that a bad value survives to the quarantine unchanged: the
validator, not the reader, decides what a value means. A CSV line that cannot be split into the
header's columns is kept too (DuckDB's reject tables), so every line of the file is accounted for.

A file that cannot be read at all raises :class:`UnreadableFile` before anything is written.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb

from carecontract.records.schema import ALL_COLUMNS, REQUIRED_COLUMNS

PARQUET_MAGIC = b"PAR1"


class UnreadableFile(Exception):
    """A whole file is unusable; the message is one line a user can act on."""


@dataclass
class SourceSummary:
    path: str
    format: str
    rows: int
    malformed: int
    ignored_columns: list[str]
    lenient_parse: bool = False  # mixed line endings: lines with extra fields may have lost them


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
        f"SELECT {_text_select(by_name)}, NULL::VARCHAR AS raw_line, {source_index} AS source_index, "
        f"{file} AS source_file, file_row_number + 1 AS source_row, "
        f"{_rid_sql(source_index, 'file_row_number')} "
        f"FROM read_parquet({file}, file_row_number=true)"
    )
    return Source(SourceSummary(str(path), "parquet", rows, 0, ignored), relation)


def _csv_source(con: duckdb.DuckDBPyConnection, path: Path, source_index: int) -> Source:
    columns = _csv_header(path)
    by_name, ignored = _check_columns(path, columns)
    file = _sql_str(str(path))
    table = f"raw_{source_index}"
    spec = "{" + ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c in columns) + "}"
    reader = (
        f"read_csv({file}, header=true, delim=',', quote='\"', escape='\"', "
        f"auto_detect=false, columns={spec}, store_rejects=true, "
        f"rejects_table='rejects_{source_index}', rejects_scan='scans_{source_index}', "
        "encoding='utf-8', strict_mode={strict})"
    )
    # the table's row ids follow file order (inserts preserve it), so a row's position is its rowid + 1;
    # numbering rows with a window function here would serialise the read
    create = (
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {_text_select(by_name)}, NULL::VARCHAR AS raw_line, "
        f"NULL::BIGINT AS source_row FROM {reader}"
    )
    lenient = False
    try:
        con.execute(create.replace("{strict}", "true"))
    except duckdb.Error as exc:
        # Strict parsing rejects lines with too many fields (instead of silently dropping the extra);
        # but it cannot cope with mixed line endings. Only then fall back to the lenient parser.
        if "invalid state" not in str(exc):
            raise UnreadableFile(f"{path}: cannot read as CSV ({str(exc).splitlines()[0]})") from exc
        lenient = True
        try:
            con.execute(create.replace("{strict}", "false"))
        except duckdb.Error as exc2:
            raise UnreadableFile(f"{path}: cannot read as CSV ({str(exc2).splitlines()[0]})") from exc2
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    # lines the CSV reader could not split into the header's columns: keep them, raw;
    # for these rows source_row is the file's line number and raw_line the text of the line
    con.execute(
        f"INSERT INTO {table} (raw_line, source_row) "
        f"SELECT trim(first(csv_line), chr(13) || chr(10)), min(line) FROM rejects_{source_index} GROUP BY line"
    )
    malformed = con.execute(f"SELECT count(DISTINCT line) FROM rejects_{source_index}").fetchone()[0]
    if rows + malformed == 0:
        raise UnreadableFile(f"{path}: file has a header but no rows")
    relation = (
        f"SELECT {', '.join(ALL_COLUMNS)}, raw_line, {source_index} AS source_index, {file} AS source_file, "
        f"coalesce(source_row, rowid + 1) AS source_row, {_rid_sql(source_index, 'rowid')} "
        f"FROM {table}"
    )
    summary = SourceSummary(str(path), "csv", rows + malformed, malformed, ignored, lenient)
    return Source(summary, relation)


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
