"""Commands for the records: make synthetic activity, ingest files into the store, report data quality."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from carecontract.cli.options import (
    AsAtOption,
    BadOption,
    JsonOption,
    RefreshOption,
    StoreOption,
    parse_date,
    store_at,
)
from carecontract.cli.shell import app
from carecontract.present import console, print_ingest, print_quality, progress_bar, table
from carecontract.synth.formats import KINDS as FORMATS


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
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="csv or parquet (the interchange format), or a national data set: " + ", ".join(FORMATS) + ".",
            callback=_one_of("csv", "parquet", *FORMATS),
        ),
    ] = "csv",
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
    if fmt in FORMATS:  # the national data sets' own shapes, for `carecontract import`
        from carecontract.synth.formats import write

        files = write(fmt, economy.events, out)
    else:
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
    refresh_figures: RefreshOption = True,
) -> None:
    """Validate activity files, quarantine bad rows with reasons, pseudonymise and store the rest."""
    from carecontract.records.ingest import ingest as run_ingest

    for file in files:
        _not_json(file)
    with progress_bar(not as_json and sys.stderr.isatty()) as report:
        result = run_ingest(files, store, progress=report)
    # the new version's figures, for the service's next request (docs/service.md)
    if refresh_figures and not result.no_op:
        from carecontract.measures.cube import refresh

        refresh(store)
    if as_json:
        print(json.dumps(result.as_dict(), default=str))
        return
    for path, batch in result.skipped.items():
        console.print(f"{path}: already submitted, byte for byte (submission {batch}); skipped")
    if result.no_op:
        console.print("Nothing to do: every file was submitted before. The store is unchanged.")
        return
    print_ingest(result.as_dict())
    print_counts(result.batch_id, result.counts)


def print_counts(batch: str | None, counts: dict[str, int]) -> None:
    """What a submission did to the store's records, beyond accepted and quarantined."""
    console.print(
        f"Submission {batch}: {counts.get('new', 0):,} new, {counts.get('corrected', 0):,} corrected, "
        f"{counts.get('withdrawn', 0):,} withdrawn, {counts.get('unchanged', 0):,} unchanged; "
        f"{counts.get('held', 0):,} held by a cross-row rule, {counts.get('rejected', 0):,} rejected. "
        f"Earlier events released: {counts.get('released', 0):,}; newly held: {counts.get('newly_held', 0):,}."
    )


def print_submissions(rows: list[dict]) -> None:
    cols = ["#", "submission", "providers", "read", "new", "corrected", "withdrawn", "unchanged", "quarantined"]
    out = table("Submissions", cols, left=("submission", "providers"))
    for r in rows:
        out.add_row(
            str(r["seq"]),
            f"{r['submission']}",
            ", ".join(r["providers"]),
            *(f"{r[k]:,}" for k in ("read", "new", "corrected", "withdrawn", "unchanged", "quarantined")),
        )
    console.print(out)


def print_history(record: str, rows: list[dict]) -> None:
    cols = ["submitted", "submission", "action", "provider", "event", "date", "patient", "status", "by"]
    out = table(f"Record {record}: every version", cols, left=tuple(cols))
    for r in rows:
        status = r["status"] + (f" ({', '.join(r['reasons'])})" if r["reasons"] else "")
        out.add_row(
            r["submitted_at"] or "",
            r["submission"],
            r["action"],
            r["provider"] or "",
            r["event_type"] or "",
            r["event_date"] or "",
            r["patient"] or "",
            status,
            r["by_submission"] or "",
        )
    console.print(out)


@app.command()
def quality(
    store: StoreOption,
    start: Annotated[str | None, typer.Option("--from", help="Only events dated from this day (ISO date).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Only events dated up to this day (ISO date).")] = None,
    as_at: AsAtOption = None,
    as_json: JsonOption = False,
) -> None:
    """Data quality: completeness, validity, timeliness and duplicates by column, provider, commissioner;
    and the pathway checks the measures depend on (treatments dated before their decision to treat)."""
    from carecontract.run import Run

    first = parse_date(start, "--from") if start else None
    last = parse_date(end, "--to") if end else None
    report = Run(store_at(store, as_at)).quality_report(first, last)
    if as_json:
        print(json.dumps(report, default=str))
        return
    print_quality(report)


@app.command()
def submissions(store: StoreOption, as_at: AsAtOption = None, as_json: JsonOption = False) -> None:
    """Every submission to the store, in order, with its counts (read = accepted + quarantined)."""
    from carecontract.records.history import submissions as list_submissions

    rows = list_submissions(store_at(store, as_at))
    if as_json:
        print(json.dumps(rows, default=str))
        return
    print_submissions(rows)


@app.command()
def history(
    store: StoreOption,
    record: Annotated[str, typer.Option(help="The record_id whose versions to show.")],
    as_at: AsAtOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every version of one record: who submitted it, when, and what became of it (no NHS numbers)."""
    from carecontract.records.history import record_history

    rows = record_history(store_at(store, as_at), record)
    if not rows:
        raise BadOption(f"{store}: no record {record!r} in any submission")
    if as_json:
        print(json.dumps(rows, default=str))
        return
    print_history(record, rows)
