"""Benchmark the independent line ledger: what counting every physical line costs against ingest.

Issue 15 asks that proving "nothing lost" (counting each CSV file's lines and records from its
bytes, without the CSV parser, and reconciling them with the parser's rows) costs under 10% of
ingest time. Both are measured in the same run on the same files:

* the line ledger alone (``records.lines.scan``) over every file;
* the whole ingest (which includes the ledger), into a fresh store each run;

for the synthetic writer's files (every string quoted) and the same rows as an exporter writes
them (quotes only where needed), plus the degraded path: the same rows with mixed line ends,
which ingest reads through a normalised copy.

Run:  python benchmarks/bench_lines.py [--population N] [--years Y] [--repeat R]
Writes benchmarks/results-lines.md (and prints it).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import date
from pathlib import Path

import duckdb

from bench_foundation import machine
from carecontract.records import lines
from carecontract.records.ingest import ingest
from carecontract.records.pseudonymise import PseudonymKey
from carecontract.records.schema import ALL_COLUMNS
from carecontract.synth.economy import generate
from carecontract.synth.writer import write_economy
from timing import best_of, write_results

HERE = Path(__file__).parent


def minimal_quoting(files: list[Path], folder: Path) -> list[Path]:
    """The same rows as an exporter writes them: DuckDB quotes a value only where it must."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        target = folder / f.name
        duckdb.sql(f"COPY (SELECT * FROM read_csv('{f}', all_varchar=true)) TO '{target}' (HEADER, DELIMITER ',')")
        out.append(target)
    return out


def mixed_line_ends(files: list[Path], folder: Path) -> list[Path]:
    """Every other line ended by CRLF: the shape that once sent ingest to a lenient parser."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        rows = f.read_bytes().split(b"\n")
        target = folder / f.name
        target.write_bytes(b"".join(r + (b"\r\n" if i % 2 else b"\n") for i, r in enumerate(rows[:-1])))
        out.append(target)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=1_100_000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results-lines.md")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cc-bench-lines-"))
    key = PseudonymKey(b"benchmark")
    report = [
        "# Line ledger benchmark",
        "",
        f"Machine: {machine()}.",
        f"Economy: {args.population:,} people × {args.years} years, 1% injected errors; best of {args.repeat} runs.",
        "",
        "| files | rows | MiB | line ledger s | ingest s (includes the ledger) | ledger / ingest |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    try:
        economy = generate(args.population, args.years, seed=1, start=date(2014, 4, 1), error_rate=0.01)
        rows = economy.events.num_rows
        quoted = write_economy(economy, work / "quoted", "csv")
        shapes = {
            "synthetic writer (every string quoted)": quoted,
            "exporter (quotes only where needed)": minimal_quoting(quoted, work / "minimal"),
            "mixed LF / CRLF line ends (normalised copy)": mixed_line_ends(quoted, work / "mixed"),
        }
        for name, files in shapes.items():
            size = sum(f.stat().st_size for f in files) / 2**20
            scan, _, _ = best_of(lambda fs=files: [lines.scan(f, len(ALL_COLUMNS)) for f in fs], args.repeat)
            runs: list[int] = []

            def run(fs: list[Path] = files, runs: list[int] = runs, tag: int = len(report)) -> None:
                runs.append(1)
                ingest(fs, work / f"store-{tag}-{len(runs)}", key=key)

            whole, _, _ = best_of(run, args.repeat)
            report.append(f"| {name} | {rows:,} | {size:,.0f} | {scan:.2f} | {whole:.2f} | {scan / whole:.1%} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report += [
        "",
        "The ledger counts line ends and quotes with NumPy over a memory map; lines with an odd number of",
        "quotes (none in a clean file) are examined one by one in Python.",
        f"Measured {date.today().isoformat()} by `python benchmarks/bench_lines.py`.",
    ]
    write_results(report, args.out)


if __name__ == "__main__":
    main()
