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
    row_offset: int = 0  # rowid of the file's first data row, less one (internal)


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


def _check_columns(path: Path, columns: list[str]) -> list[str]:
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
    return [c for c, n in zip(columns, normalised, strict=True) if n not in ALL_COLUMNS]


def load_source(con: duckdb.DuckDBPyConnection, path: Path, table: str, source_index: int) -> SourceSummary:
    """Append one file's rows to ``table`` (all columns text, plus source bookkeeping)."""
    fmt = detect_format(path)
    if fmt == "parquet":
        try:
            columns = [
                r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({_sql_str(str(path))})").fetchall()
            ]
        except duckdb.Error as exc:
            raise UnreadableFile(f"{path}: unreadable Parquet file ({str(exc).splitlines()[0]})") from exc
        ignored = _check_columns(path, columns)
        by_name = {c.strip().lower(): c for c in columns}
        relation = f"read_parquet({_sql_str(str(path))})"
    else:
        columns = _csv_header(path)
        ignored = _check_columns(path, columns)
        by_name = {c.strip().lower(): c for c in columns}
        spec = "{" + ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c in columns) + "}"
        relation = (
            f"read_csv({_sql_str(str(path))}, header=true, delim=',', quote='\"', escape='\"', "
            f"auto_detect=false, columns={spec}, store_rejects=true, "
            f"rejects_table='rejects_{source_index}', rejects_scan='scans_{source_index}', "
            "encoding='utf-8', strict_mode={strict})"
        )
    select = ", ".join(
        (f"CAST({_quote_ident(by_name[c])} AS VARCHAR)" if c in by_name else "NULL::VARCHAR") + f" AS {c}"
        for c in ALL_COLUMNS
    )
    insert = (
        f"INSERT INTO {table} SELECT {select}, NULL::VARCHAR AS raw_line, {source_index} AS source_index, "
        # source_row is filled in below from the row id: a window function here would serialise the read
        f"{_sql_str(str(path))} AS source_file, NULL::BIGINT AS source_row FROM {relation}"
    )
    lenient = False
    try:
        con.execute(insert.replace("{strict}", "true"))
    except duckdb.Error as exc:
        # Strict parsing rejects lines with too many fields (instead of silently dropping the extra);
        # but it cannot cope with mixed line endings. Only then fall back to the lenient parser.
        if fmt != "csv" or "invalid state" not in str(exc):
            raise UnreadableFile(f"{path}: cannot read as {fmt.upper()} ({str(exc).splitlines()[0]})") from exc
        lenient = True
        try:
            con.execute(f"DELETE FROM {table} WHERE source_index = {source_index}")
            con.execute(insert.replace("{strict}", "false"))
        except duckdb.Error as exc2:
            raise UnreadableFile(f"{path}: cannot read as CSV ({str(exc2).splitlines()[0]})") from exc2
    rows, first_rowid = con.execute(
        f"SELECT count(*), min(rowid) FROM {table} WHERE source_index = {source_index}"
    ).fetchone()
    # insertion order is file order (DuckDB preserves it): a row's position is its rowid less this offset
    row_offset = (first_rowid or 0) - 1
    malformed = 0
    if fmt == "csv":
        # lines the CSV reader could not split into the header's columns: keep them, raw;
        # for these rows source_row is the file's line number and raw_line the text of the line
        con.execute(
            f"INSERT INTO {table} (raw_line, source_index, source_file, source_row) "
            f"SELECT trim(first(csv_line), chr(13) || chr(10)), {source_index}, {_sql_str(str(path))}, min(line) "
            f"FROM rejects_{source_index} GROUP BY line"
        )
        malformed = con.execute(f"SELECT count(DISTINCT line) FROM rejects_{source_index}").fetchone()[0]
    if rows + malformed == 0:
        raise UnreadableFile(f"{path}: file has a header but no rows")
    return SourceSummary(str(path), fmt, rows + malformed, malformed, ignored, lenient, row_offset)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_raw_table(con: duckdb.DuckDBPyConnection, table: str = "raw") -> None:
    cols = ", ".join(f"{c} VARCHAR" for c in ALL_COLUMNS)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} ({cols}, raw_line VARCHAR, source_index INTEGER, "
        "source_file VARCHAR, source_row BIGINT)"
    )
