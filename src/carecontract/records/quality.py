"""Data quality of a store: completeness, validity, timeliness and duplicates.

Why it matters: the seeds' contracts were priced on base data "over four years old" that nobody
had checked. Stage 1 of the Staffordshire contract existed to fix exactly that, and its gate asks
for a data-completeness threshold — so the measures here are the ones a gate can be set on.

Everything is computed over the store's view (the latest, or as at a date or submission): the
current events and the open quarantine (rows rejected and not since resubmitted, and events a
cross-row rule holds back), by column, provider and commissioner, in one DuckDB pass per table. A
superseded or withdrawn version is not counted: a correction replaces the row it corrects.

Over a period (``start``, ``end``), the rows are those whose event date falls in it, *plus every
row whose date could not be read*: such a row cannot be placed in a period, and leaving it out
would let a period look cleaner than its data is. A period with no rows has no completeness or
validity (None), so a gate set on them fails rather than passes on nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from carecontract.records import schema, validation
from carecontract.records.store import Store

#: The columns that describe an event (``action`` says what to do with a row, it is not an event's field).
COLUMNS = schema.REQUIRED_COLUMNS + schema.OPTIONAL_COLUMNS
STALE_YEARS = 4  # the seeds: "the data on which the contracts were based is now over 4 years old"


@dataclass
class QualityReport:
    rows: dict[str, int]
    columns: list[dict[str, Any]]
    reasons: dict[str, int]
    timeliness: dict[str, Any]
    by_provider: list[dict[str, Any]]
    by_commissioner: list[dict[str, Any]]
    reading: list[dict[str, Any]] = field(default_factory=list)
    scope: dict[str, Any] = field(default_factory=dict)  # the period and the store version measured

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "rows": self.rows,
            "duplicates": self.reasons.get(validation.DUPLICATE_RECORD_ID, 0),
            "columns": self.columns,
            "reasons": self.reasons,
            "timeliness": self.timeliness,
            "by_provider": self.by_provider,
            "by_commissioner": self.by_commissioner,
            "reading": self.reading,
        }


def _read_rows_sql(period: bool = False) -> str:
    """Every row read, accepted or not, with a filled flag per column and its reasons; with ``period``,
    only rows dated in [$start, $end] and rows with no readable date (filtered as the files are read)."""
    event_cols = []
    quarantine_cols = []
    for c in COLUMNS:
        if c == "nhs_number":
            event_cols.append("true AS f_nhs_number")
            quarantine_cols.append("(nhs_number IS NOT NULL OR patient_id IS NOT NULL) AS f_nhs_number")
        else:
            event_cols.append(f"({c} IS NOT NULL) AS f_{c}")
            quarantine_cols.append(f"(NULLIF(trim({c}), '') IS NOT NULL) AS f_{c}")
    return (
        f"SELECT provider_code AS provider, commissioner_code AS commissioner, event_type, event_date, "
        f"CAST([] AS VARCHAR[]) AS reasons, batch_id, {', '.join(event_cols)} FROM events "
        + ("WHERE event_date IS NULL OR event_date BETWEEN $start AND $end " if period else "")
        + "UNION ALL "
        "SELECT upper(NULLIF(trim(provider_code), '')), upper(NULLIF(trim(commissioner_code), '')), "
        "lower(trim(event_type)), TRY_CAST(trim(event_date) AS DATE), reasons, batch_id, "
        f"{', '.join(quarantine_cols)} FROM quarantine"
        + (
            " WHERE TRY_CAST(trim(event_date) AS DATE) IS NULL "
            "OR TRY_CAST(trim(event_date) AS DATE) BETWEEN $start AND $end"
            if period
            else ""
        )
    )


def quality(store: str | Store, start: date | None = None, end: date | None = None) -> QualityReport:
    """The quality of ``store``'s view (its ``as_at``), over events dated in [start, end] if given."""
    store = store if isinstance(store, Store) else Store(store)
    con = store.connect()
    try:
        if start is None and end is None:
            con.execute(f"CREATE TEMP TABLE read_rows AS {_read_rows_sql()}")
        else:  # undated rows stay: they may belong to any period
            con.execute(
                f"CREATE TEMP TABLE read_rows AS {_read_rows_sql(period=True)}",
                {"start": start or date(1, 1, 1), "end": end or date(9999, 12, 31)},
            )
        read, accepted = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE len(reasons) = 0) FROM read_rows"
        ).fetchone()
        reasons = dict(
            con.execute(
                "SELECT r, count(*) FROM (SELECT unnest(reasons) AS r FROM read_rows) GROUP BY r ORDER BY 2 DESC, 1"
            ).fetchall()
        )
        columns = _by_column(con, read, reasons)
        timeliness = _timeliness(con, "len(reasons) = 0")  # dates of rejected rows are not trusted
        by_provider = _by_group(con, "provider")
        by_commissioner = _by_group(con, "commissioner")
    finally:
        con.close()
    return QualityReport(
        {"read": read, "accepted": accepted, "quarantined": read - accepted},
        columns,
        reasons,
        timeliness,
        by_provider,
        by_commissioner,
        _reading(store),
        {
            "from": start.isoformat() if start else None,
            "to": end.isoformat() if end else None,
            "as_at": str(store.as_at) if store.as_at is not None else None,
            "version": store.version(),
        },
    )


def _reading(store: Store) -> list[dict[str, Any]]:
    """How each file was read: its own line count reconciled with its rows, and anything to know.

    Files that needed more than a plain read carry the notes ingest gave (mixed line ends, stray
    quotes), and every CSV file's physical lines are listed, so an auditor can
    check that lines = header + blank + record lines and records = accepted + quarantined.
    """
    out = []
    for batch in store.batches():
        for entry in batch.extra.get("source_ledgers", []):
            ledger = entry.get("lines") or {}
            out.append(
                {
                    "batch": batch.id,
                    "file": entry["path"],
                    "records": entry["records"],
                    "accepted": entry["accepted"],
                    "quarantined": entry["quarantined"],
                    "physical_lines": ledger.get("physical_lines"),
                    "blank_lines": ledger.get("blank_lines"),
                    "normalised": entry.get("normalised", False),
                    "notes": entry.get("notes", []),  # said once, at ingest (SourceSummary.notes)
                }
            )
    return out


def _by_column(con, read: int, reasons: dict[str, int]) -> list[dict[str, Any]]:
    required_where = {c: "true" for c in schema.REQUIRED_COLUMNS}
    for event_type, cols in schema.REQUIRED_FOR_EVENT.items():
        for c in cols:
            required_where[c] = f"event_type = '{event_type}'"
    fills = ", ".join(f"avg(f_{c}::INT)" for c in COLUMNS)
    required = ", ".join(
        f"avg(f_{c}::INT) FILTER (WHERE {required_where[c]})" if c in required_where else "NULL" for c in COLUMNS
    )
    filled = con.execute(f"SELECT {fills}, {required} FROM read_rows").fetchone()
    n = len(COLUMNS)
    # rows failing each column: count rows, not reasons, so a row failing twice on one column counts once
    failing = dict(
        con.execute(
            "SELECT col, count(DISTINCT rid) FROM (SELECT rid, unnest(cols) AS col FROM "
            "(SELECT row_number() OVER () AS rid, list_transform(reasons, lambda r: "
            f"{_reason_to_column_sql()}) AS cols FROM read_rows WHERE len(reasons) > 0)) GROUP BY col"
        ).fetchall()
    )
    out = []
    for i, c in enumerate(COLUMNS):
        out.append(
            {
                "column": c,
                "required": c in required_where,
                "completeness": _round(filled[i]),
                "completeness_where_required": _round(filled[n + i]),
                "validity": _round(1 - failing.get(c, 0) / read) if read else None,
                "invalid_rows": failing.get(c, 0),
            }
        )
    return out


def _reason_to_column_sql() -> str:
    arms = " ".join(f"WHEN r = '{rule.reason}' THEN '{rule.column}'" for rule in validation.all_rules())
    return f"CASE {arms} ELSE 'record_id' END"


def _timeliness(con, where: str) -> dict[str, Any]:
    row = con.execute(
        "SELECT max(event_date), min(event_date), "
        "median(date_diff('day', event_date, CAST(b.ingested_at AS DATE))), "
        f"avg((event_date < CAST(b.ingested_at AS DATE) - INTERVAL {STALE_YEARS} YEAR)::INT), "
        "date_diff('day', max(event_date), max(CAST(b.ingested_at AS DATE))) "
        f"FROM read_rows r JOIN batches b ON r.batch_id = b.id WHERE {where} AND event_date IS NOT NULL"
    ).fetchone()
    return {
        "latest_event": row[0].isoformat() if row[0] else None,
        "earliest_event": row[1].isoformat() if row[1] else None,
        "median_lag_days": row[2],
        f"share_older_than_{STALE_YEARS}y": _round(row[3]),
        "data_age_days": row[4],
    }


def _by_group(con, key: str) -> list[dict[str, Any]]:
    rows = con.execute(
        f"SELECT coalesce({key}, '(missing)') AS k, count(*), count(*) FILTER (WHERE len(reasons) = 0), "
        f"count(*) FILTER (WHERE list_contains(reasons, '{validation.DUPLICATE_RECORD_ID}')), "
        "max(event_date) FILTER (WHERE len(reasons) = 0), "
        "date_diff('day', max(event_date) FILTER (WHERE len(reasons) = 0), max(CAST(b.ingested_at AS DATE))) "
        "FROM read_rows r JOIN batches b ON r.batch_id = b.id GROUP BY k ORDER BY count(*) DESC"
    ).fetchall()
    return [
        {
            key: k,
            "read": n,
            "accepted": ok,
            "validity": _round(ok / n) if n else None,
            "duplicates": dup,
            "latest_event": latest.isoformat() if latest else None,
            "data_age_days": age,
        }
        for k, n, ok, dup, latest, age in rows
    ]


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)
