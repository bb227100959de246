"""The ``carecontract`` command: one sub-command per job.

User mistakes (a missing file, a bad argument, a store built with another key) end with one red
line and a non-zero exit, never a traceback; ``--json`` prints machine-readable results only.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from carecontract import __version__
from carecontract.records.reading import UnreadableFile
from carecontract.records.store import StoreError

app = typer.Typer(
    name="carecontract",
    help="Run, pay and stress-test outcomes-based prime-provider care contracts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

USER_ERRORS = (UnreadableFile, StoreError, ValueError, FileNotFoundError, PermissionError)


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one clear line."""
    try:
        yield
    except USER_ERRORS as exc:
        fail(str(exc))


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, float], None]]:
    """A Rich progress bar driven by (step, fraction) callbacks; silent when disabled."""
    if not enabled:
        yield lambda step, done: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<14}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        tasks: dict[str, Any] = {}

        def report(step: str, done: float) -> None:
            if step not in tasks:
                tasks[step] = progress.add_task(step, total=1.0)
            progress.update(tasks[step], completed=done)

        yield report


def version_callback(value: bool) -> None:
    if value:
        console.print(f"carecontract {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """carecontract: outcomes-based prime-provider care contracts, made explicit and checkable."""


# -- synth --------------------------------------------------------------------------------------
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
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    rates: Annotated[Path | None, typer.Option(help="Calibration YAML (default: the shipped one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Generate a synthetic health economy's activity records, calibrated to public figures."""
    from carecontract.synth.economy import generate
    from carecontract.synth.rates import load_rates
    from carecontract.synth.writer import write_economy

    with user_errors():
        first = _parse_date(start, "--start") if start else None
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


def _parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} must be an ISO date like 2024-04-01, got {text!r}") from None


# -- ingest -------------------------------------------------------------------------------------
@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Activity files (CSV or Parquet).")],
    store: Annotated[Path, typer.Option(help="Store directory (created if missing).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Validate activity files, quarantine bad rows with reasons, pseudonymise and store the rest."""
    from carecontract.records.ingest import ingest as run_ingest

    with user_errors(), progress_bar(not as_json and sys.stderr.isatty()) as report:
        result = run_ingest(files, store, progress=report)
    if as_json:
        d = result.as_dict()
        print(json.dumps({k: d[k] for k in ("read", "accepted", "quarantined", "reasons")}))
        return
    print_ingest(result.as_dict())


def print_ingest(result: dict[str, Any]) -> None:
    console.print(
        f"Read [bold]{result['read']:,}[/] rows: [green]{result['accepted']:,} accepted[/], "
        f"[yellow]{result['quarantined']:,} quarantined[/] → store {result['store']}"
    )
    if result["reasons"]:
        table = Table(title="Quarantine reasons", show_edge=False)
        table.add_column("reason")
        table.add_column("rows", justify="right")
        for reason, count in result["reasons"].items():
            table.add_row(reason, f"{count:,}")
        console.print(table)


# -- quality ------------------------------------------------------------------------------------
@app.command()
def quality(
    store: Annotated[Path, typer.Option(help="Store directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Data quality: completeness, validity, timeliness and duplicates by column, provider, commissioner."""
    from carecontract.records.quality import quality as run_quality
    from carecontract.records.store import Store

    with user_errors():
        if not Store(store).exists():
            raise StoreError(f"{store}: no store here (run `carecontract ingest FILE --store {store}` first)")
        report = run_quality(store).as_dict()
    if as_json:
        print(json.dumps(report, default=str))
        return
    print_quality(report)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def print_quality(report: dict[str, Any]) -> None:
    rows = report["rows"]
    t = report["timeliness"]
    console.print(
        f"[bold]Data quality[/]: {rows['read']:,} rows read, {rows['accepted']:,} accepted "
        f"({_pct(rows['accepted'] / rows['read'] if rows['read'] else None)}), "
        f"{report['duplicates']:,} duplicates. Events {t['earliest_event']} to {t['latest_event']}; "
        f"latest is {t['data_age_days']} days old at ingest, median lag {t['median_lag_days']} days."
    )
    cols = Table(title="By column", show_edge=False)
    for name in ("column", "completeness", "where required", "validity", "invalid rows"):
        cols.add_column(name, justify="left" if name == "column" else "right")
    for c in report["columns"]:
        cols.add_row(
            c["column"] + (" *" if c["required"] else ""),
            _pct(c["completeness"]),
            _pct(c["completeness_where_required"]),
            _pct(c["validity"]),
            f"{c['invalid_rows']:,}",
        )
    console.print(cols)
    for key, title in (("by_provider", "provider"), ("by_commissioner", "commissioner")):
        table = Table(title=f"By {title}", show_edge=False)
        for name in (title, "read", "validity", "duplicates", "latest event", "age (days)"):
            table.add_column(name, justify="left" if name == title else "right")
        for g in report[key]:
            table.add_row(
                str(g[title]),
                f"{g['read']:,}",
                _pct(g["validity"]),
                f"{g['duplicates']:,}",
                str(g["latest_event"]),
                str(g["data_age_days"]),
            )
        console.print(table)
    console.print("* required for every row, or for the event types that need it")


# -- demo ---------------------------------------------------------------------------------------
@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Directory for the demo's data, store and reports.")] = Path(
        "carecontract-demo"
    ),
    population: Annotated[int, typer.Option(help="People in the synthetic area.")] = 1_100_000,
    years: Annotated[int, typer.Option(help="Years of activity.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 2026,
    error_rate: Annotated[float, typer.Option(help="Share of rows with injected errors.")] = 0.01,
) -> None:
    """The whole pipeline on a synthetic Staffordshire-sized economy: synthesise, ingest, check quality."""
    from carecontract.demo import run_demo

    with user_errors():
        run_demo(out, population, years, seed, error_rate, console, err)


if __name__ == "__main__":  # pragma: no cover
    app()
