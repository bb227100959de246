"""Commands for the records: make synthetic activity, ingest files into the store, report data quality."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from carecontract.cli.options import BadOption, JsonOption, StoreOption, parse_date, require_store
from carecontract.cli.shell import app
from carecontract.present import console, print_ingest, print_quality, progress_bar


def _one_of(*choices: str):
    def check(value: str) -> str:
        if value not in choices:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return check


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="Directory to write activity files into.")],
    population: Annotated[int, typer.Option(help="People in the area.")] = 1_100_000,
    years: Annotated[int, typer.Option(help="Contract years of activity.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 0,
    start: Annotated[
        str | None, typer.Option(help="First day (ISO date); default: 1 April, `years` before the last one.")
    ] = None,
    error_rate: Annotated[float, typer.Option(help="Share of rows to corrupt with realistic errors (0-0.5).")] = 0.0,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.", callback=_one_of("csv", "parquet"))] = "csv",
    rates: Annotated[Path | None, typer.Option(help="Calibration YAML (default: the shipped one).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Generate a synthetic health economy's activity records, calibrated to public figures."""
    from carecontract.synth.economy import generate
    from carecontract.synth.rates import load_rates
    from carecontract.synth.window import check_activity_window
    from carecontract.synth.writer import write_economy

    first = parse_date(start, "--start") if start else None
    if first is not None:
        check_activity_window(first, years)
    t0 = time.perf_counter()
    economy = generate(population, years, seed, first, load_rates(rates) if rates else None, error_rate)
    files = write_economy(economy, out, fmt)
    elapsed = time.perf_counter() - t0
    summary = {
        "rows": economy.events.num_rows,
        "injected_errors": economy.injected.num_rows,
        "start": economy.start.isoformat(),
        "files": [str(f) for f in files],
        "seconds": round(elapsed, 3),
        **economy.meta,
    }
    if as_json:
        print(json.dumps(summary))
        return
    console.print(
        f"Wrote [bold]{summary['rows']:,}[/] activity records ({economy.injected.num_rows:,} with injected errors) "
        f"for {population:,} people over {years} year(s) from {economy.start} in {elapsed:.1f}s:"
    )
    for f in files:
        console.print(f"  {f}")


def _not_json(file: Path) -> None:
    """A JSON file named for ingest (synth's ``synth.json`` beside its CSVs) is refused by name, with the fix."""
    try:
        with open(file, "rb") as handle:
            start = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return  # ingest itself says why the file cannot be read
    if start[:1] in (b"{", b"["):
        hint = f" (the activity files are {file.parent / 'activity-*.csv'})" if file.name == "synth.json" else ""
        raise BadOption(f"{file}: a JSON file, not activity records; ingest reads CSV or Parquet files{hint}")


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Activity files (CSV or Parquet).")],
    store: Annotated[Path, typer.Option(help="Store directory (created if missing).")],
    as_json: JsonOption = False,
) -> None:
    """Validate activity files, quarantine bad rows with reasons, pseudonymise and store the rest."""
    from carecontract.records.ingest import ingest as run_ingest

    for file in files:
        _not_json(file)
    with progress_bar(not as_json and sys.stderr.isatty()) as report:
        result = run_ingest(files, store, progress=report)
    if as_json:
        print(json.dumps(result.as_dict(), default=str))
        return
    print_ingest(result.as_dict())


@app.command()
def quality(store: StoreOption, as_json: JsonOption = False) -> None:
    """Data quality: completeness, validity, timeliness and duplicates by column, provider, commissioner."""
    from carecontract.records.quality import quality as run_quality

    require_store(store)
    report = run_quality(store).as_dict()
    if as_json:
        print(json.dumps(report, default=str))
        return
    print_quality(report)
