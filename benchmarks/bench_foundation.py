"""Benchmark the foundation's hot paths: synthetic generation and ingest.

Every figure is reported against a baseline measured in the same run, on the same data, so the
ratios hold on any machine:

* generation  vs  a NumPy floor: drawing the same number of random numbers as the table has
  cells (no generator can be cheaper than making its randomness);
* ingest      vs  a DuckDB floor: reading the same files and writing them to Parquet as read, with no
  validation at all (the cost of the I/O ingest cannot avoid), and vs a per-row Python
  validator (csv module + the same rules in Python), the obvious hand-written alternative.

Run:  python benchmarks/bench_foundation.py [--population N] [--years Y] [--repeat R]
Writes benchmarks/results.md (and prints it).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import numpy as np

from carecontract.records import duck, nhs_number, schema
from carecontract.records.ingest import ingest
from carecontract.records.pseudonymise import PseudonymKey
from carecontract.records.store import EVENT_COLUMNS
from carecontract.synth.economy import generate
from carecontract.synth.writer import write_economy
from timing import best_of, write_results

HERE = Path(__file__).parent
START = date(2014, 4, 1)


def best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, first) wall-clock seconds over ``repeat`` runs."""
    fastest, first, _ = best_of(fn, repeat)
    return fastest, first


def numpy_floor(rows: int, columns: int) -> None:
    rng = np.random.default_rng(0)
    for _ in range(columns):
        rng.random(rows)


def _floor_reader(files: list[Path], fmt: str, lineage: bool) -> str:
    """The files in one relation; ``lineage`` adds the file name (and row number for Parquet)."""
    listed = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    if fmt == "parquet":
        options = ", filename=true, file_row_number=true" if lineage else ""
        return f"read_parquet({listed}{options})"
    options = ", filename=true" if lineage else ""
    return f"read_csv({listed}, all_varchar=true{options})"


def duckdb_floor(files: list[Path], out: Path, fmt: str, store_shaped: bool = False) -> None:
    """Copy the files to one zstd Parquet file with no validation: the I/O ingest cannot avoid.

    ``store_shaped`` writes what the store holds instead of the columns as read: every column cast
    to its stored type, a 64-character hex pseudonym per row and the tumour site, so the gap to
    ingest is what validation, the quarantine and the cross-row checks cost.
    Both floors may reorder rows (as ingest does), so neither pays for keeping file order.
    """
    con = duck.connect()  # the same memory_limit and spill as ingest's own database
    con.execute("SET preserve_insertion_order = false")
    select = "*"
    if store_shaped:
        special = {
            "patient_id": "sha256(CAST(nhs_number AS VARCHAR))",
            "tumour_site": schema.tumour_site_sql("icd10"),
            "batch_id": "'floor'",
            "source_file": "filename",
            "source_row": "1" if fmt == "csv" else "file_row_number + 1",
            "source_line": "2" if fmt == "csv" else "NULL",
        }
        select = ", ".join(f"TRY_CAST({special.get(c, c)} AS {t}) AS {c}" for c, t in EVENT_COLUMNS.items())
    con.execute(
        f"COPY (SELECT {select} FROM {_floor_reader(files, fmt, store_shaped)}) "
        f"TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
    )
    con.close()


VALID_EVENTS = set(schema.EVENT_TYPES)


def python_per_row(path: Path, limit: int) -> int:
    """The hand-written alternative: csv.DictReader and the main rules, one row at a time."""
    accepted = 0
    seen: set[str] = set()
    with open(path, newline="") as handle:
        for i, row in enumerate(csv.DictReader(handle)):
            if i >= limit:
                break
            ok = bool(row["record_id"]) and row["record_id"] not in seen
            ok &= nhs_number.is_valid(row["nhs_number"].replace(" ", ""))
            try:
                ok &= date.fromisoformat(row["event_date"]) <= date.today()
            except ValueError:
                ok = False
            ok &= row["event_type"].strip().lower() in VALID_EVENTS
            ok &= bool(row["provider_code"]) and bool(row["commissioner_code"])
            seen.add(row["record_id"])
            accepted += ok
    return accepted


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}, "
        f"DuckDB {duckdb.__version__}, NumPy {np.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=1_100_000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cc-bench-"))
    key = PseudonymKey(b"benchmark")
    lines = [
        "# Foundation benchmark",
        "",
        f"Machine: {machine()}.",
        f"Economy: {args.population:,} people × {args.years} years, 1% injected errors; best of {args.repeat} runs "
        "(first run in brackets).",
        "",
        "| hot path | rows | seconds | rows/s | baseline (same run) | baseline s | ratio |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    try:
        economy = generate(args.population, args.years, seed=1, start=START, error_rate=0.01)
        rows = economy.events.num_rows
        gen_best, gen_first = best(
            lambda: generate(args.population, args.years, seed=1, start=START, error_rate=0.01), args.repeat
        )
        floor_best, _ = best(lambda: numpy_floor(rows, len(schema.ALL_COLUMNS)), args.repeat)
        lines.append(
            f"| synth: generate (in memory) | {rows:,} | {gen_best:.2f} ({gen_first:.2f}) | {rows / gen_best:,.0f} "
            f"| NumPy floor: {len(schema.ALL_COLUMNS)} random draws per row | {floor_best:.2f} "
            f"| {gen_best / floor_best:.1f}× |"
        )
        for fmt in ("csv", "parquet"):
            folder = work / fmt
            write_best, _ = best(lambda f=fmt, d=folder: write_economy(economy, d, f), args.repeat)
            files = write_economy(economy, folder, fmt)
            size = sum(f.stat().st_size for f in files) / 2**20
            lines.append(
                f"| synth: write {fmt} ({size:,.0f} MiB) | {rows:,} | {write_best:.2f} "
                f"| {rows / write_best:,.0f} | — | — | — |"
            )

            def run_ingest(fs: list[Path] = files, f: str = fmt, runs: list[int] = []) -> None:  # noqa: B006
                runs.append(1)  # a fresh store each run, so every run ingests everything
                ingest(fs, work / f"store-{f}-{len(runs)}", key=key)

            ing_best, ing_first = best(run_ingest, args.repeat)
            floor, _ = best(lambda fs=files, f=fmt: duckdb_floor(fs, work / f"floor-{f}.parquet", f), args.repeat)
            shaped, _ = best(
                lambda fs=files, f=fmt: duckdb_floor(fs, work / f"shaped-{f}.parquet", f, store_shaped=True),
                args.repeat,
            )
            lines.append(
                f"| ingest {fmt} (validate, quarantine, pseudonymise, store) | {rows:,} | {ing_best:.2f} "
                f"({ing_first:.2f}) | {rows / ing_best:,.0f} | DuckDB floor: same files → Parquet as read, "
                f"no validation | {floor:.2f} | {ing_best / floor:.1f}× |"
            )
            lines.append(
                f"| (floor) ingest {fmt}, store-shaped | {rows:,} | — | {rows / shaped:,.0f} "
                "| DuckDB floor: same files → the store's typed columns and a pseudonym per row, no validation "
                f"| {shaped:.2f} "
                f"| ingest is {ing_best / shaped:.1f}× |"
            )
        sample = 200_000
        csv_file = sorted((work / "csv").glob("activity-*.csv"))[0]
        py_best, _ = best(lambda: python_per_row(csv_file, sample), 1)
        py_rate = sample / py_best
        ours = rows / ing_best
        lines.append(
            f"| (baseline) per-row Python validator, 5 of the rules, no output | {sample:,} | {py_best:.2f} "
            f"| {py_rate:,.0f} | ingest parquet above | — | ingest is {ours / py_rate:.1f}× faster |"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines += [
        "",
        "Ratio = our time / baseline time (lower is better; 1.0× would mean no cost above the floor).",
        f"Measured {date.today().isoformat()} by `python benchmarks/bench_foundation.py`.",
    ]
    write_results(lines, args.out)


if __name__ == "__main__":
    main()
