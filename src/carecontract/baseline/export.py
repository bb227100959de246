"""Export a baseline for finance teams: CSV and Parquet files, and one Excel workbook.

The CSV and Parquet files are for programs: the baseline's own columns, money in the ledger's
integer pence. The workbook is for people in a finance team: money in pounds with a pound
number format, counts with thousands separators, contract years as 2024/25, a bold frozen
header with filters, and one sheet per table named for what it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from carecontract.baseline.compute import Baseline
from carecontract.terms.model import Contract
from carecontract.terms.names import organisation
from carecontract.terms.years import year_label

SHEETS = ("activity", "patient_flows", "payment_flows")


def export(
    baseline: Baseline, out: str | Path | None, excel: str | Path | None = None, contract: Contract | None = None
) -> list[Path]:
    """CSV and Parquet files into ``out`` (if given) and a workbook at ``excel`` (if given).

    With ``contract``, the workbook names each provider and commissioner beside its code.
    """
    written: list[Path] = []
    tables = {name: pa.Table.from_pylist(getattr(baseline, name)) for name in SHEETS} if out else {}
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        for suffix, writer in ((".csv", pacsv.write_csv), (".parquet", pq.write_table)):
            path = out / f"{name}{suffix}"
            writer(table, path)
            written.append(path)
    if excel:
        written.append(_workbook(baseline, Path(excel), contract))
    return written


@dataclass(frozen=True)
class Column:
    """One column of a workbook sheet: the row's key, its heading, and how Excel shows the value."""

    key: str
    heading: str
    number_format: str = "General"
    width: int = 14
    convert: Callable[[Any], Any] | None = None  # the value as the sheet holds it (default: as it is)


COUNT = "#,##0"
POUNDS = '"£"#,##0.00'


def _pounds_from_pence(pence: int) -> Decimal:
    return Decimal(pence) / 100  # exact: the ledger's pence as pounds and pence, no float on the way


#: Each sheet of the workbook: its name (what it holds, as finance teams say it), the baseline's
#: table it shows, and its columns. Money is in pounds with a pound format; counts have separators.
WORKBOOK: tuple[tuple[str, str, tuple[Column, ...]], ...] = (
    (
        "Activity and cost",
        "activity",
        (
            Column("year", "Contract year", width=13, convert=year_label),
            Column("tumour_site", "Tumour site", width=22),
            Column("service", "Service", width=24),
            Column("provider", "Provider", width=10),
            Column("commissioner", "Commissioner", width=13),
            Column("events", "Events", COUNT, 10),
            Column("patients", "Patients", COUNT, 10),
            Column("cost_gbp", "Cost £", POUNDS, 16),
        ),
    ),
    (
        "Patient flows",
        "patient_flows",
        (
            Column("from_provider", "From provider", width=14),
            Column("to_provider", "To provider", width=14),
            Column("moves", "Moves", COUNT, 10),
            Column("pathways", "Pathways", COUNT, 10),
        ),
    ),
    (
        "Payment flows",
        "payment_flows",
        (
            Column("year", "Contract year", width=13, convert=year_label),
            Column("rule", "Payment rule", width=24),
            Column("from", "From (ledger account)", width=26),
            Column("to", "To (ledger account)", width=26),
            Column("pence", "Amount £", POUNDS, 18, _pounds_from_pence),
        ),
    ),
)


#: Columns holding an organisation's code, and the role a code the terms do not list is called by.
NAMED = {"provider": "provider", "from_provider": "provider", "to_provider": "provider", "commissioner": "commissioner"}


def _with_names(columns: tuple[Column, ...], contract: Contract | None) -> tuple[Column, ...]:
    """``columns`` with, after each organisation code, its name from the terms (if there are terms)."""
    if contract is None:
        return columns
    out: list[Column] = []
    for column in columns:
        out.append(column)
        if column.key in NAMED:
            role = NAMED[column.key]
            name = partial(organisation, contract=contract, role=role)
            out.append(Column(column.key, f"{column.heading} name", width=40, convert=name))
    return tuple(out)


def _workbook(baseline: Baseline, path: Path, contract: Contract | None = None) -> Path:
    """One sheet per table, named for what it holds: pounds, number formats, a frozen header, filters."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for title, table, plain in WORKBOOK:
        columns = _with_names(plain, contract)
        sheet = book.create_sheet(title)
        sheet.append([c.heading for c in columns])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        rows = getattr(baseline, table)
        for row in rows:
            sheet.append([c.convert(row[c.key]) if c.convert else row[c.key] for c in columns])
        for index, column in enumerate(columns, 1):
            letter = get_column_letter(index)
            sheet.column_dimensions[letter].width = column.width
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = column.number_format
        sheet.freeze_panes = "A2"
        if rows:
            sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
        else:
            sheet.append(["(no rows yet)"])
    book.save(path)
    return path
