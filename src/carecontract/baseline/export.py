"""Export a baseline for finance teams: CSV and Parquet files, and one Excel workbook."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from carecontract.baseline.compute import Baseline

SHEETS = ("activity", "patient_flows", "payment_flows")


def export(baseline: Baseline, out: str | Path | None, excel: str | Path | None = None) -> list[Path]:
    """CSV and Parquet files into ``out`` (if given) and a workbook at ``excel`` (if given)."""
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
        written.append(_workbook(baseline, Path(excel)))
    return written


def _workbook(baseline: Baseline, path: Path) -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for name in SHEETS:
        rows = getattr(baseline, name)
        sheet = book.create_sheet(name)
        if not rows:
            sheet.append(["(no rows)"])
            continue
        header = list(rows[0])
        sheet.append(header)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append([row[k] for k in header])
        sheet.freeze_panes = "A2"
    book.save(path)
    return path
