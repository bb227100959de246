"""``carecontract demo``: the pipeline end to end on a synthetic Staffordshire-sized economy.

It is the newcomer's first run and the project's smoke test: synthesise 1.1 million people's
activity with 1% realistic errors, ingest it, show what was quarantined and why, report data
quality, and check that every injected error was found. Later stages add their steps here.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pyarrow.csv as pacsv
from rich.console import Console

from carecontract.measures.compute import compute_measures
from carecontract.records.ingest import ingest
from carecontract.records.quality import quality
from carecontract.records.store import Store
from carecontract.synth.economy import contract_year_bounds, generate
from carecontract.synth.writer import write_economy


def run_demo(
    out: Path, population: int, years: int, seed: int, error_rate: float, console: Console, err: Console
) -> dict:
    from carecontract.cli import print_ingest, print_measures, print_quality, progress_bar

    out = Path(out)
    data, store_dir = out / "data", out / "store"
    for folder in (data, store_dir):  # a demo starts afresh; it only removes its own folders
        if folder.exists():
            shutil.rmtree(folder)
    console.rule("[bold]carecontract demo")
    t0 = time.perf_counter()
    with progress_bar(True) as report:
        report("synthesise", 0.0)
        economy = generate(population, years, seed, error_rate=error_rate)
        report("synthesise", 0.7)
        files = write_economy(economy, data)
        report("synthesise", 1.0)
        result = ingest(files, store_dir, progress=report)
    console.print(
        f"Synthesised {economy.events.num_rows:,} activity records for {population:,} people, "
        f"{economy.start} to {years} year(s) on, with {economy.injected.num_rows:,} injected errors."
    )
    print_ingest(result.as_dict())
    found = _check_injected(data / "injected_errors.csv", store_dir)
    console.print(found)
    report_data = quality(store_dir).as_dict()
    print_quality(report_data)
    years_covered = contract_year_bounds(economy.start, economy.years)
    period = (years_covered[0][0], years_covered[-1][1])
    console.rule(f"Outcome measures, {period[0]} to {period[1]}")
    outcome_rows = compute_measures(store_dir, *period)
    print_measures(outcome_rows, [], f"England's standards as targets; by provider: carecontract measures "
                   f"--store {store_dir} --from {period[0]} --to {period[1]} --by provider")  # fmt: skip
    console.rule()
    console.print(f"Done in {time.perf_counter() - t0:.1f}s. Outputs:")
    console.print(f"  activity files     {data}/activity-*.csv  (injected errors listed in injected_errors.csv)")
    console.print(f"  event store        {store_dir}/  (Parquet + manifest.json; open catalog.duckdb in DuckDB)")
    console.print(f"  quarantine         {store_dir}/quarantine/*.parquet  (every rejected row with its reasons)")
    console.print(f"  next               carecontract quality --store {store_dir}")
    return {"ingest": result.as_dict(), "quality": report_data, "measures": outcome_rows}


def _check_injected(manifest: Path, store_dir: Path) -> str:
    """Did ingest find every injected error, with the reason it should have given?"""
    injected = pacsv.read_csv(manifest)
    con = Store(store_dir).connect()
    con.register("injected", injected)
    missed = con.execute(
        "SELECT count(*) FROM injected i WHERE kind <> 'duplicate_row' AND NOT EXISTS "
        "(SELECT 1 FROM quarantine q WHERE q.record_id = i.record_id AND list_contains(q.reasons, i.expected_reason))"
    ).fetchone()[0]
    quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    con.close()
    total = injected.num_rows
    if missed == 0 and quarantined == total:
        return f"[green]✓[/] all {total:,} injected errors were quarantined with the expected reason, and nothing else."
    return f"[red]✗[/] {missed:,} of {total:,} injected errors were missed; {quarantined:,} rows quarantined."
