"""``carecontract demo``: the pipeline end to end on a synthetic Staffordshire-sized economy.

It is the newcomer's first run and the project's smoke test: synthesise 1.1 million people's
activity with 1% realistic errors, ingest it, show what was quarantined and why, report data
quality, check that every injected error was found, show the outcome measures, pay the
Staffordshire cancer contract for the years the data covers, and write the HTML report.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pyarrow.csv as pacsv
from rich.console import Console

from carecontract.measures.compute import compute_measures
from carecontract.present import print_ingest, print_measures, print_quality, progress_bar
from carecontract.records.ingest import ingest
from carecontract.records.quality import quality
from carecontract.records.store import Store
from carecontract.synth.economy import contract_year_bounds, generate
from carecontract.synth.writer import write_economy
from carecontract.terms import load_terms
from carecontract.terms.targets import contract_targets, label_rows, targets_rule


def run_demo(
    out: Path, population: int, years: int, seed: int, error_rate: float, console: Console, err: Console
) -> dict:
    """Run the pipeline into ``out``, printing as it goes; returns the ingest, quality and measure results."""
    out = Path(out)
    data, store_dir = out / "data", out / "store"
    for folder in (data, store_dir):  # a demo starts afresh; it only removes its own folders
        if folder.exists():
            shutil.rmtree(folder)
    console.rule("[bold]carecontract demo")
    t0 = time.perf_counter()
    with progress_bar(True, err) as report:
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
    print_ingest(result.as_dict(), console)
    found = _check_injected(data / "injected_errors.csv", store_dir)
    console.print(found)
    report_data = quality(store_dir).as_dict()
    print_quality(report_data, console)
    years_covered = contract_year_bounds(economy.start, economy.years)
    period = (years_covered[0][0], years_covered[-1][1])
    console.rule(f"Outcome measures, {period[0]} to {period[1]}")
    terms_file = CONTRACTS / "staffordshire-cancer.yaml"
    contract = load_terms(terms_file).contract if terms_file.exists() else None  # the report's targets too
    outcome_rows = label_rows(compute_measures(store_dir, *period, targets=contract_targets(contract)), contract)
    hint = (
        f"{targets_rule(contract, terms_file.name if contract else None)} By provider: carecontract measures "
        f"{terms_file if contract else ''} --store {store_dir} --from {period[0]} --to {period[1]} --by provider"
    )
    print_measures(outcome_rows, [], hint, console=console)
    report_path = _pay_and_report(store_dir, out, console)
    console.rule()
    console.print(f"Done in {time.perf_counter() - t0:.1f}s. Outputs:")
    console.print(f"  activity files     {data}/activity-*.csv  (injected errors listed in injected_errors.csv)")
    console.print(f"  event store        {store_dir}/  (Parquet + manifest.json; open catalog.duckdb in DuckDB)")
    console.print(f"  quarantine         {store_dir}/quarantine/*.parquet  (every rejected row with its reasons)")
    console.print(f"  next               carecontract quality --store {store_dir}")
    if report_path:
        terms = CONTRACTS / "staffordshire-cancer.yaml"
        console.print(f"  dashboard          carecontract serve {terms} --store {store_dir}  (API docs at /docs)")
        console.print(f"[bold]Open the report:[/] {report_path}  (one file, works offline)")
    return {"ingest": result.as_dict(), "quality": report_data, "measures": outcome_rows}


CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def _pay_and_report(store_dir: Path, out: Path, console: Console) -> Path | None:
    """Close the Staffordshire cancer contract's years the data covers, and write the report."""
    from carecontract.payments.book import PaymentBook, covered_years
    from carecontract.publish.ocds import release_package
    from carecontract.publish.report import build_report

    terms_file = CONTRACTS / "staffordshire-cancer.yaml"
    if not terms_file.exists():
        console.print("(contracts/ not found beside the source: payments and the report are skipped)")
        return None
    terms = load_terms(terms_file)
    years = covered_years(terms.contract, Store(store_dir))
    if years:
        closed = PaymentBook(store_dir, terms).close(years)
        paid = sum(e["result"]["paid_by_commissioners_pence"] for e in closed) / 1e8
        console.print(
            f"Paid {terms.contract.name} for {years[0]}–{years[-1]}: £{paid:,.1f}m through a balanced ledger."
        )
    path = out / "report.html"
    path.write_text(build_report(terms, store_dir, runs=5000))
    release = out / "release.json"
    release.write_text(json.dumps(release_package(terms, store_dir), indent=2, ensure_ascii=False))
    console.print(f"Published the contract as OCDS 1.1 releases (ledger transactions, gate milestones): {release}")
    return path


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
