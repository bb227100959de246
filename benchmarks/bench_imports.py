"""Benchmark the national-data-set importers against plain ingest of the same events, and show that an
import's memory does not grow with the extract.

Speed (same run, same machine): a synthetic economy is written as a CWT and a COSD extract; each is
imported (``import_files``: count, map, stage, ingest) and, into a fresh store, the very events that
import produced are ingested from an interchange CSV (``ingest``). The ratio import / ingest is the
importer's cost.

Memory: a CWT extract of N records (the example file's pathway repeated with new keys) is mapped and
staged (``run.stage``, the importer's own part: ingest is DuckDB's) in a fresh process, whose peak
resident set is read from ``getrusage``; N = 200,000 and 1,000,000 by default.

Run:  python benchmarks/bench_imports.py [--population N] [--repeat R] [--sizes 200000,1000000]
Writes benchmarks/results-imports.md (and prints it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from bench_foundation import machine
from carecontract.imports import cwt, run
from carecontract.imports.run import import_files
from carecontract.records.ingest import ingest
from carecontract.records.pseudonymise import PseudonymKey
from carecontract.records.schema import ALL_COLUMNS
from carecontract.synth import formats
from carecontract.synth.economy import generate
from timing import best_of, write_results

HERE = Path(__file__).parent
EXAMPLE = HERE.parent / "examples" / "national" / "cwt" / "cwt-extract.csv"
KEY = PseudonymKey(b"benchmark-key-of-at-least-thirty-two-bytes")


def big_cwt(path: Path, records: int) -> None:
    """``records`` lines: the example's first pathway, each with its own PATIENT PATHWAY IDENTIFIER."""
    with open(EXAMPLE) as handle:
        header, first = handle.readline(), handle.readline()
    at = first.index("RJE0000001")
    with open(path, "w") as out:
        out.write(header)
        for n in range(records):
            out.write(f"{first[:at]}P{n:09d}{first[at + 10 :]}")


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stage_peak(path: Path) -> dict[str, float]:
    """Map and stage ``path`` in this process; peak RSS (MiB) while doing it, and seconds.

    The peak is reset once the libraries are loaded (Linux: ``5`` to ``/proc/self/clear_refs`` resets
    VmHWM), so it is the staging's own peak, not the import of pyarrow and DuckDB."""
    import time

    folder = Path(tempfile.mkdtemp())
    Path("/proc/self/clear_refs").write_text("5")
    before = _status("VmRSS")
    t0 = time.perf_counter()
    rejections = run.Rejections(folder / "rejected.parquet", "cwt")
    ledgers, _ = run.stage(cwt, [path], folder, rejections, "bench", lambda *_: None)
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM")
    return {
        "records": ledgers[0].records,
        "events": ledgers[0].events,
        "before_mib": before,
        "peak_mib": peak,
        "seconds": seconds,
    }


def memory(sizes: list[int], folder: Path) -> list[dict[str, float]]:
    out = []
    for n in sizes:
        path = folder / f"cwt-{n}.csv"
        big_cwt(path, n)
        code = (
            f"import json, sys; sys.path.insert(0, {str(HERE)!r}); from bench_imports import stage_peak; "
            f"from pathlib import Path; print(json.dumps(stage_peak(Path({str(path)!r}))))"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["file_mib"] = path.stat().st_size / 2**20
        out.append(row)
        path.unlink()
    return out


def _interchange_csv(kind: str, extract: Path, target: Path) -> int:
    """The events the importer makes of ``extract``, as an interchange CSV (what plain ingest reads)."""
    module = run.importer(kind)
    n = 0
    with open(target, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=ALL_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for mapped in module.map_file(extract):
            for event in mapped.events:
                writer.writerow({c: event.get(c, "") if event.get(c) is not None else "" for c in ALL_COLUMNS})
                n += 1
    return n


def speed(population: int, repeat: int, folder: Path) -> list[dict[str, float]]:
    economy = generate(population, 2, seed=11, start=date(2022, 4, 1))
    rows = []
    counter = iter(range(10**6))  # a fresh store for every run
    for kind in formats.KINDS:
        (extract,) = formats.write(kind, economy.events, folder / "national")
        plain = folder / f"{kind}-events.csv"
        events = _interchange_csv(kind, extract, plain)

        def do_import(kind=kind, extract=extract) -> object:
            return import_files(kind, [extract], folder / f"import-{kind}-{next(counter)}", key=KEY)

        def do_ingest(plain=plain) -> object:
            return ingest([plain], folder / f"ingest-{next(counter)}", key=KEY)

        t_import, _, result = best_of(do_import, repeat)
        t_ingest, _, _ = best_of(do_ingest, repeat)
        rows.append(
            {"kind": kind, "records": result.records, "events": events, "import_s": t_import, "ingest_s": t_ingest}
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--population", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="200000,1000000")
    args = parser.parse_args()
    os.environ.setdefault("CARECONTRACT_KEY", KEY.secret.decode())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        timed = speed(args.population, args.repeat, folder)
        mem = memory([int(s) for s in args.sizes.split(",")], folder)
    lines = [
        "# Importers against plain ingest",
        "",
        f"Machine: {machine()}. Shared with other jobs while measured: read the ratios (same run), not the seconds.",
        f"`python benchmarks/bench_imports.py --population {args.population} --repeat {args.repeat} "
        f"--sizes {args.sizes}`; best of {args.repeat}.",
        "",
        "## Speed: import(extract) against ingest(the same events as an interchange CSV)",
        "",
        "| kind | source records | events | import s | ingest s | import / ingest |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in timed:
        lines.append(
            f"| {r['kind']} | {r['records']:,} | {r['events']:,} | {r['import_s']:.2f} | {r['ingest_s']:.2f} | "
            f"{r['import_s'] / r['ingest_s']:.2f}× |"
        )
    lines += [
        "",
        "## Memory: mapping and staging a CWT extract (the importer's part), a fresh process per size",
        "",
        "| records | file MiB | events staged | peak RSS MiB | RSS at start MiB | seconds | records/s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in mem:
        lines.append(
            f"| {r['records']:,} | {r['file_mib']:.0f} | {r['events']:,} | {r['peak_mib']:.0f} | "
            f"{r['before_mib']:.0f} | {r['seconds']:.1f} | {r['records'] / r['seconds']:,.0f} |"
        )
    write_results(lines, HERE / "results-imports.md")


if __name__ == "__main__":
    main()
