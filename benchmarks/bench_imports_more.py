"""Benchmark the APC, deaths and FHIR importers against plain ingest of the same events.

For each kind, the synthetic economy is written in that format (``carecontract.synth.formats``), and
the events its import makes are also written as an interchange CSV. Timed, each into a fresh store:

* ``import``: ``carecontract.imports.run.import_files`` on the national-format file (map, stage,
  count, ingest);
* ``ingest``: ``carecontract.records.ingest.ingest`` on the interchange CSV of the same events.

The ratio import / ingest is what the national format costs over the interchange format. Figures come
from a shared, loaded machine: read the ratios, not the seconds.

Run:  python benchmarks/bench_imports_more.py [--population N] [--repeat R]
Writes benchmarks/results-imports-more.md (and prints it).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from bench_foundation import machine
from carecontract.imports import apc, deaths, fhir
from carecontract.imports.run import import_files
from carecontract.records.ingest import ingest
from carecontract.records.pseudonymise import PseudonymKey
from carecontract.records.schema import ALL_COLUMNS
from carecontract.synth.economy import generate
from carecontract.synth.formats import apc as apc_format
from carecontract.synth.formats import deaths as deaths_format
from carecontract.synth.formats import fhir as fhir_format
from timing import best_of, write_results

HERE = Path(__file__).parent
KEY = PseudonymKey(b"benchmark-key-of-at-least-thirty-two-bytes")
KINDS = {"apc": (apc, apc_format), "deaths": (deaths, deaths_format), "fhir": (fhir, fhir_format)}


def interchange(module, path: Path, out: Path) -> tuple[Path, int]:
    events = [e for r in module.map_file(path) for e in r.events]
    columns = {c: pa.array([None if e.get(c) is None else str(e[c]) for e in events], pa.string()) for c in ALL_COLUMNS}
    pacsv.write_csv(pa.table(columns), out)
    return out, len(events)


def timed(fn, folder: Path, repeat: int) -> float:
    def run():
        store = folder / "store"
        shutil.rmtree(store, ignore_errors=True)
        return fn(store)

    return best_of(run, repeat)[0]


def mapping_rate(module, example: Path, key: str, rows: int, folder: Path) -> tuple[float, float]:
    """(records/s mapped, records/s counted) on ``rows`` copies of an example row: the importer alone."""
    header, row = example.read_text().splitlines()[:2]
    big = folder / f"big-{module.KIND}.csv"
    with open(big, "w") as handle:
        handle.write(header + "\n")
        for n in range(rows):
            handle.write(row.replace(key, str(10**11 + n), 1) + "\n")
    t_map = best_of(lambda: sum(1 for _ in module.map_file(big)), 1)[0]
    t_count = best_of(lambda: module.count_records(big), 1)[0]
    return rows / t_map, rows / t_count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--population", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the CSV importers' mapping-only run")
    args = parser.parse_args()
    economy = generate(population=args.population, years=2, seed=1, start=date(2022, 4, 1))
    lines = [
        "# APC, deaths and FHIR importers against plain ingest of the same events",
        "",
        f"{machine()}; population {args.population:,}, 2 years; best of {args.repeat}. A shared, loaded machine:",
        "compare the ratios (measured in the same run), not the seconds.",
        "",
        "| kind | source records | events | import (s) | ingest of the same events (s) | import / ingest | records/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for kind, (module, writer) in KINDS.items():
            [source] = writer.write(economy.events, folder / kind)
            plain, n_events = interchange(module, source, folder / f"{kind}-interchange.csv")
            records = module.count_records(source)
            t_import = timed(lambda store, k=kind, s=source: import_files(k, [s], store, key=KEY), folder, args.repeat)
            t_ingest = timed(lambda store, p=plain: ingest([p], store, key=KEY), folder, args.repeat)
            lines.append(
                f"| {kind} | {records:,} | {n_events:,} | {t_import:.2f} | {t_ingest:.2f} | "
                f"{t_import / t_ingest:.1f}x | {records / t_import:,.0f} |"
            )
        examples = HERE.parent / "examples/national"
        lines += [
            "",
            f"The CSV importers alone on {args.rows:,} copies of an example row (what a national-size extract costs):",
            "",
            "| kind | mapped records/s | counted records/s (line ledger) |",
            "|---|---:|---:|",
        ]
        for module, example, key in (
            (apc, examples / "apc/hes-apc-episodes.csv", "300000000001"),
            (deaths, examples / "deaths/civil-registration-deaths.csv", "70000001"),
        ):
            mapped, counted = mapping_rate(module, example, key, args.rows, folder)
            lines.append(f"| {module.KIND} | {mapped:,.0f} | {counted:,.0f} |")
    write_results(lines, HERE / "results-imports-more.md")


if __name__ == "__main__":
    main()
