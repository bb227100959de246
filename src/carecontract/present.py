"""How figures are shown to a person: rates, money, contract years, and the terminal tables.

Why one module: the CLI and the demo print the same ingest, quality and measure tables, and a
rate or an amount of money should read the same wherever it appears (the report can use the
plain formatters too). It sits above the library and below the CLI and the demo, so neither of
those has to import the other to print.

The plain formatters return strings and know nothing of Rich; the ``print_*`` helpers render a
library result (the ``as_dict()`` of an ingest or quality result, measure rows) to a Rich console.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

#: Standard output (results) and standard error (progress, errors) for every command.
console = Console()
err = Console(stderr=True)

#: Measures reported on their own scale rather than as a proportion.
SCORE_MEASURES = frozenset({"patient_experience"})

DASH = "—"


# -- plain formatters ---------------------------------------------------------------------------
def percent(value: float | None) -> str:
    """A proportion as a percentage to one decimal place (``—`` when unknown)."""
    return DASH if value is None else f"{value:.1%}"


def rate(measure: str, value: float | None) -> str:
    """A measure's value: a score to two decimals, anything else as a percentage."""
    if value is None:
        return DASH
    return f"{value:.2f}" if measure in SCORE_MEASURES else f"{value:.1%}"


def pence_as_millions(pence: int) -> str:
    """Pence as £ millions to two decimals, without the £ (for a table headed £m)."""
    return f"{pence / 1e8:,.2f}"


def pounds_as_millions(pounds: float, places: int = 2) -> str:
    """Pounds as £ millions, without the £ (for a table headed £m)."""
    return f"{pounds / 1e6:,.{places}f}"


def contract_year(start_year: int) -> str:
    """A contract year by the calendar year it starts in, as finance teams write it: 2024/25."""
    return f"{start_year}/{(start_year + 1) % 100:02d}"


def parameter_value(value: float | None) -> str:
    """A terms parameter: thousands separated when large, else as short as it goes."""
    if value is None:
        return "not yet set"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"


def yes_no(value: bool | None) -> str:
    """Rich markup for a verdict: green yes, red no, a dash when there is none."""
    return {True: "[green]yes[/]", False: "[red]no[/]", None: DASH}[value]


def table(title: str | None, columns: list[str], left: tuple[str, ...] = (), caption: str | None = None) -> Table:
    """An edgeless table whose ``left`` columns are left-aligned and the rest right-aligned."""
    out = Table(title=title or None, show_edge=False, caption=caption or None)
    for name in columns:
        out.add_column(name, justify="left" if name in left else "right")
    return out


# -- progress -----------------------------------------------------------------------------------
@contextmanager
def progress_bar(enabled: bool, console: Console = err) -> Iterator[Callable[[str, float], None]]:
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
        console=console,
        transient=False,
    ) as progress:
        tasks: dict[str, Any] = {}

        def report(step: str, done: float) -> None:
            if step not in tasks:
                tasks[step] = progress.add_task(step, total=1.0)
            progress.update(tasks[step], completed=done)

        yield report


# -- library results as tables ------------------------------------------------------------------
def print_ingest(result: dict[str, Any], console: Console = console) -> None:
    """An ingest result (``IngestResult.as_dict()``): the counts, then the quarantine reasons."""
    console.print(
        f"Read [bold]{result['read']:,}[/] rows: [green]{result['accepted']:,} accepted[/], "
        f"[yellow]{result['quarantined']:,} quarantined[/] → store {result['store']}"
    )
    if result["reasons"]:
        reasons = table("Quarantine reasons", ["reason", "rows"], left=("reason",))
        for reason, count in result["reasons"].items():
            reasons.add_row(reason, f"{count:,}")
        console.print(reasons)
    for source in result.get("sources", []):
        ledger = source.get("lines")
        if ledger:
            console.print(
                f"{source['path']}: {ledger['physical_lines']:,} lines = {ledger['header_lines']} header "
                f"+ {ledger['blank_lines']:,} blank + {ledger['records']:,} records "
                f"(+ {ledger['continuation_lines']:,} continuation lines); "
                f"{source['accepted']:,} accepted + {source['quarantined']:,} quarantined"
            )
        for note in source.get("notes", []):
            console.print(f"[yellow]  note:[/] {note}")


def print_quality(report: dict[str, Any], console: Console = console) -> None:
    """A data quality report (``QualityReport.as_dict()``): a summary line and three tables."""
    rows = report["rows"]
    t = report["timeliness"]
    console.print(
        f"[bold]Data quality[/]: {rows['read']:,} rows read, {rows['accepted']:,} accepted "
        f"({percent(rows['accepted'] / rows['read'] if rows['read'] else None)}), "
        f"{report['duplicates']:,} duplicates. Events {t['earliest_event']} to {t['latest_event']}; "
        f"latest is {t['data_age_days']} days old at ingest, median lag {t['median_lag_days']} days."
    )
    for entry in report.get("reading", []):
        for note in entry["notes"]:
            console.print(f"[yellow]Reading {entry['file']} (batch {entry['batch']}):[/] {note}")
    cols = table(
        "By column", ["column", "completeness", "where required", "validity", "invalid rows"], left=("column",)
    )
    for c in report["columns"]:
        cols.add_row(
            c["column"] + (" *" if c["required"] else ""),
            percent(c["completeness"]),
            percent(c["completeness_where_required"]),
            percent(c["validity"]),
            f"{c['invalid_rows']:,}",
        )
    console.print(cols)
    for key, title in (("by_provider", "provider"), ("by_commissioner", "commissioner")):
        groups = table(
            f"By {title}", [title, "read", "validity", "duplicates", "latest event", "age (days)"], left=(title,)
        )
        for g in report[key]:
            groups.add_row(
                str(g[title]),
                f"{g['read']:,}",
                percent(g["validity"]),
                f"{g['duplicates']:,}",
                str(g["latest_event"]),
                str(g["data_age_days"]),
            )
        console.print(groups)
    console.print("* required for every row, or for the event types that need it")
    checks = report.get("pathways")
    if checks and checks.get("treatment_before_decision"):
        console.print(
            f"[yellow]Pathways:[/] {checks['treatment_before_decision']:,} treatment(s) dated before their decision "
            "to treat (counted as 0 days in the 31-day standard)"
        )


def _counts(row: dict[str, Any]) -> str:
    """n / N for a proportion, n=N for a mean score, with suppressed counts shown as such."""
    n, d = row.get("numerator"), row["denominator"]
    if d is None:
        return "[dim]suppressed[/]"
    if isinstance(n, int) or (n is None and "suppressed" in row and row["measure"] not in SCORE_MEASURES):
        return f"{'*' if n is None else f'{n:,}'} / {d:,}"
    return f"n={d:,}"


def print_measures(
    rows: list[dict[str, Any]], keys: list[str], caption: str = "", title: str = "", console: Console = console
) -> None:
    """Measure rows (``compute_measures``): rate, interval, counts, target and verdict per row."""
    out = table(
        title, ["measure", *keys, "rate", "95% interval", "n / N", "target", "met"], ("measure", *keys), caption
    )
    for r in rows:
        measure = r["measure"]
        outlier = " [yellow]outlier[/]" if r.get("funnel", {}).get("outlier") else ""
        interval = DASH if r["ci_low"] is None else f"{rate(measure, r['ci_low'])}–{rate(measure, r['ci_high'])}"
        cells = [str(r.get(k)) for k in keys]
        out.add_row(
            measure,
            *cells,
            rate(measure, r["rate"]) + outlier,
            interval,
            _counts(r),
            rate(measure, r["target"]),
            yes_no(r["met"]),
        )
    console.print(out)
