"""Benchmark the versioned store: ingest against the unversioned ingest, as-at reads against current
reads, and the Parquet + state-file design against Delta Lake (the ``deltalake`` package).

Every figure is a ratio to a baseline measured in the same run on the same data:

* ingest with versioning  vs  the unversioned ingest of the commit before it (``--baseline-src``: a
  ``src`` directory of that commit, e.g. ``git archive 8c3a5b4 | tar -x -C /tmp/base``); each run
  is a fresh process on a fresh store, the two alternating, best of ``--repeat``;
* as-at read of the measures  vs  a current read of the same store (both through ``Run``, fresh,
  so the events table and pathways are built each time), and vs a read of the same files with no
  versions to exclude (what an unversioned store costs);
* Delta Lake: the same events written with ``write_deltalake``, corrections merged (``MERGE``), and
  a current and a time-travel read of the same aggregate through DuckDB (the table's Arrow
  dataset: DuckDB's own ``delta`` extension cannot be installed offline), against the store's
  DuckDB views.

Run:  python benchmarks/bench_versions.py --baseline-src /tmp/base/src [--population N] [--years Y]
Writes benchmarks/results-versions.md (and prints it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

from bench_foundation import machine
from timing import best_of, write_results

HERE = Path(__file__).parent
SRC = HERE.parent / "src"
START = date(2014, 4, 1)
INGEST = (
    "import sys, time; from datetime import date; from carecontract.records.ingest import ingest; "
    "from carecontract.records.pseudonymise import PseudonymKey; t = time.perf_counter(); "
    "ingest(sys.argv[2:], sys.argv[1], key=PseudonymKey(b'benchmark'), as_of=date(2026, 11, 1)); "
    "print(time.perf_counter() - t)"
)


def timed_ingest(src: Path, files: list[Path], store: Path) -> float:
    """Seconds one ingest takes in a fresh process running the code in ``src``."""
    shutil.rmtree(store, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", INGEST, str(store), *map(str, files)], env=env, check=True, capture_output=True
    )
    return float(out.stdout.decode().strip().splitlines()[-1])


def corrections(files: list[Path], out: Path, share: int = 100) -> Path:
    """A correction file: 1 in ``share`` rows of the last year re-costed or re-dated, 1 in 4·share withdrawn."""
    con = duckdb.connect()
    con.execute(f"CREATE VIEW raw AS SELECT * FROM read_csv('{files[-1]}', all_varchar = true)")
    cols = [c for c in con.execute("SELECT * FROM raw LIMIT 0").fetchdf().columns]
    shifted = ", ".join(
        "CAST(TRY_CAST(event_date AS DATE) + 1 AS VARCHAR) AS event_date" if c == "event_date" else c for c in cols
    )
    nulls = ", ".join(c if c in ("record_id", "provider_code") else f"NULL AS {c}" for c in cols)
    con.execute(
        f"COPY (SELECT {shifted}, 'submit' AS action FROM raw WHERE hash(record_id) % {share} = 0 "
        f"AND event_type NOT IN ('referral', 'death') "
        f"UNION ALL SELECT {nulls}, 'withdraw' FROM raw WHERE hash(record_id) % {4 * share} = 1 "
        f"AND event_type NOT IN ('referral', 'death')) TO '{out}' (HEADER)"
    )
    return out


def read_seconds(store: Path, before: str, period: tuple[date, date], repeat: int) -> dict[str, tuple[float, int]]:
    """Best seconds of the measures over ``period`` read three ways, alternating so that load on a
    shared machine falls on each alike: a fresh Run (current), a fresh Run as at ``before``, and the
    same files read with nothing excluded (what an unversioned store costs); with the events read."""
    from carecontract.engine import read_events
    from carecontract.measures.compute import compute_measures, sources
    from carecontract.records.store import Store
    from carecontract.run import Run

    files = [str(f) for f in Store(store).files("events")]

    def run_at(as_at: str | None) -> int:
        run = Run(store, as_at=as_at)
        run.measures(*period)
        return run.events.count().execute()

    def plain() -> int:
        events = read_events(files)
        compute_measures(store, *period, src=sources(events, detail=False))
        return events.count().execute()

    ways = {"current": lambda: run_at(None), "as_at": lambda: run_at(before), "plain": plain}
    times: dict[str, list[float]] = {k: [] for k in ways}
    counts: dict[str, int] = {}
    for _ in range(repeat):
        for name, fn in ways.items():
            t0 = time.perf_counter()
            counts[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {k: (min(v), counts[k]) for k, v in times.items()}


AGGREGATE = "SELECT event_type, year(event_date) AS y, count(*), sum(cost_gbp) FROM {t} GROUP BY ALL"


def delta_comparison(store: Path, work: Path, repeat: int) -> list[str]:
    """Write the store's first version's events as a Delta table, merge the corrections, and time reads."""
    from deltalake import DeltaTable, write_deltalake

    from carecontract.records.store import Store

    first = Store(store).committed()[-2]["id"]  # before the corrections
    con = Store(store, first).connect()
    table = con.sql("SELECT * FROM events").to_arrow_table()
    path = work / "delta"
    t0 = time.perf_counter()
    write_deltalake(str(path), table)
    write_s = time.perf_counter() - t0
    latest = Store(store).connect()
    changed = latest.sql("SELECT * FROM events WHERE batch_id = (SELECT max(id) FROM batches)").to_arrow_table()
    gone = latest.sql(
        "SELECT record_id FROM state WHERE kind = 'event' AND status = 'withdrawn' "
        "AND by_batch = (SELECT max(id) FROM batches)"
    ).to_arrow_table()
    t0 = time.perf_counter()
    dt = DeltaTable(str(path))
    (
        dt.merge(changed, "t.record_id = s.record_id", source_alias="s", target_alias="t")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
    DeltaTable(str(path)).delete(f"record_id IN ({', '.join(repr(r) for r in gone.column(0).to_pylist()) or 'NULL'})")
    merge_s = time.perf_counter() - t0

    def delta_read(version: int | None) -> int:
        dataset = DeltaTable(str(path), version=version).to_pyarrow_dataset()
        c = duckdb.connect()
        c.register("d", dataset)
        return len(c.execute(AGGREGATE.format(t="d")).fetchall())

    def store_read(as_at: str | None) -> int:
        c = Store(store, as_at).connect()
        return len(c.execute(AGGREGATE.format(t="events")).fetchall())

    rows = [
        ("Delta: current read (DuckDB over the Arrow dataset)", best_of(lambda: delta_read(None), repeat)[0]),
        ("Delta: time-travel read, version 0", best_of(lambda: delta_read(0), repeat)[0]),
        ("store: current read (Parquet + state file)", best_of(lambda: store_read(None), repeat)[0]),
        ("store: as-at read, before the corrections", best_of(lambda: store_read(first), repeat)[0]),
    ]
    size = sum(f.stat().st_size for f in path.rglob("*.parquet")) / 2**20
    lines = [
        "",
        f"Delta Lake ({table.num_rows:,} events; `deltalake` write {write_s:.2f} s, {size:.0f} MiB; "
        f"merge of {changed.num_rows:,} corrections + delete of {gone.num_rows:,} withdrawals {merge_s:.2f} s):",
        "",
        "| read: one grouped aggregate over every current event | seconds |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {s:.3f} |" for name, s in rows]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=1_100_000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, help="src of the commit before (omit: no ingest comparison)")
    parser.add_argument("--no-delta", action="store_true", help="skip the Delta Lake comparison")
    parser.add_argument("--out", type=Path, default=HERE / "results-versions.md")
    args = parser.parse_args()
    from carecontract.records.ingest import ingest
    from carecontract.records.pseudonymise import PseudonymKey
    from carecontract.records.store import Store
    from carecontract.synth.economy import generate
    from carecontract.synth.writer import write_economy

    work = Path(tempfile.mkdtemp(prefix="cc-versions-"))
    economy = generate(args.population, args.years, seed=1, start=START, error_rate=0.01)
    files = write_economy(economy, work / "data")
    rows = economy.events.num_rows
    lines = [
        "# Versioned store benchmark",
        "",
        f"Machine: {machine()}. A shared machine, loaded by other work while this ran: read the ratios, "
        "not the seconds.",
        f"Economy: {args.population:,} people × {args.years} years ({rows:,} rows, CSV), 1% injected errors.",
        "",
        "| measured | seconds | baseline (same run) | baseline s | ratio |",
        "|---|---:|---|---:|---:|",
    ]
    new, old = [], []
    for _ in range(args.repeat if args.baseline_src else 0):  # alternate, so load affects both alike
        old.append(timed_ingest(args.baseline_src, files, work / "old-store"))
        new.append(timed_ingest(SRC, files, work / "new-store"))
    if new:
        lines.append(
            f"| ingest, versioned (one submission of every file) | {min(new):.2f} | "
            f"unversioned ingest (the commit before) | {min(old):.2f} | {min(new) / min(old):.2f}× |"
        )
    # a store of yearly submissions, then a month of corrections
    store = work / "store"
    key = PseudonymKey(b"benchmark")
    for f in files:
        ingest([f], store, key=key, as_of=date(2026, 11, 1))
    fix = ingest([corrections(files, work / "corrections.csv")], store, key=key, as_of=date(2026, 11, 1))
    before = Store(store).committed()[-2]["id"]
    period = (START, date(START.year + args.years, 3, 31))
    reads = read_seconds(store, before, period, args.repeat)
    (current_s, n_now), (as_at_s, n_then), (plain_s, _) = reads["current"], reads["as_at"], reads["plain"]
    counts = fix.counts
    lines += [
        f"| measures, as at the submission before the corrections ({n_then:,} events) | {as_at_s:.2f} | "
        f"current read ({n_now:,} events) | {current_s:.2f} | {as_at_s / current_s:.2f}× |",
        f"| measures, current read | {current_s:.2f} | the same files read with nothing excluded | "
        f"{plain_s:.2f} | {current_s / plain_s:.2f}× |",
        "",
        f"Store: {len(files)} yearly submissions, then corrections ({counts['corrected']:,} corrected, "
        f"{counts['withdrawn']:,} withdrawn, {counts['released']:,} released, {counts['newly_held']:,} newly held).",
    ]
    try:
        if not args.no_delta:
            lines += delta_comparison(store, work, args.repeat)
    except ImportError:
        lines += ["", "Delta Lake: `deltalake` not installed (pip install deltalake); comparison skipped."]
    lines += ["", f"Measured {date.today()} by `python benchmarks/bench_versions.py`."]
    write_results(lines, args.out)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
