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
from datetime import date
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from carecontract.errors import UserError

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
    from carecontract.terms.years import year_label

    return year_label(start_year)


def parameter_value(value: float | None) -> str:
    """A terms parameter: thousands separated when large, else as short as it goes."""
    if value is None:
        return "not yet set"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"


def gate_aims(gate: Any) -> str:
    """A fee stage's gate (``terms.model.Gate``) in words: each aim with its direction and threshold."""
    from carecontract.measures.definitions import HIGHER_IS_BETTER

    aims = [
        f"data {name} at least {percent(value)}"
        for name, value in (("completeness", gate.data_completeness), ("validity", gate.data_validity))
        if value is not None
    ]
    for measure, threshold in gate.measures.items():
        direction = "at least" if HIGHER_IS_BETTER[measure] else "at most"
        aims.append(f"{measure} {direction} {rate(measure, threshold)}")
    return "; ".join(aims) or "no aims set"


def yes_no(value: bool | None) -> str:
    """Rich markup for a verdict: green yes, red no, a dash when there is none."""
    return {True: "[green]yes[/]", False: "[red]no[/]", None: DASH}[value]


class Figures(Table):
    """A table that never cuts a figure: in a narrow terminal, figure columns keep their width.

    Why: in a narrow terminal (80 columns) Rich shrinks every column and cuts what does not fit
    with "…", and a figure cut short ("78.5%–79.…", "-132.") is a wrong figure. When the table is
    too wide, each figure column (right-aligned) keeps the width of its widest cell, its heading
    wrapping instead, and the text columns share what is left, folding onto more lines, which
    loses nothing.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.widest: list[int] = []

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.widest += [0] * (len(renderables) - len(self.widest))
        for index, cell in enumerate(renderables):
            if isinstance(cell, str):
                self.widest[index] = max(self.widest[index], cell_len(Text.from_markup(cell).plain))
        super().add_row(*renderables, **kwargs)

    def __rich_console__(self, console: Console, options: Any) -> Any:
        headers = [cell_len(str(c.header)) for c in self.columns]
        widest = [max(w, h) for w, h in zip(self.widest + [0] * len(self.columns), headers, strict=False)]
        overhead = self._extra_width + sum(self._get_padding_width(i) for i in range(len(self.columns)))
        room = options.max_width - overhead
        if sum(widest) > room:
            figures = {i: max(1, self.widest[i] if i < len(self.widest) else 1) for i, c in enumerate(self.columns)}
            figures = {i: w for i, w in figures.items() if self.columns[i].justify == "right"}
            text = [i for i in range(len(self.columns)) if i not in figures]
            left = max(len(text), room - sum(figures.values()))
            want = sum(widest[i] for i in text) or 1
            widths = dict(figures)
            for i in text:
                widths[i] = max(1, min(widest[i], left * widest[i] // want))
            spare = room - sum(widths.values())
            for i in sorted(figures, key=lambda i: widest[i] - figures[i]):  # headings that need least first
                grow = min(spare, widest[i] - widths[i])
                widths[i] += max(0, grow)
                spare -= max(0, grow)
            for i, width in widths.items():
                self.columns[i].width = width
        yield from super().__rich_console__(console, options)


def table(title: str | None, columns: list[str], left: tuple[str, ...] = (), caption: str | None = None) -> Table:
    """An edgeless table whose ``left`` columns are left-aligned text and the rest right-aligned figures.

    Figures are never cut to fit a narrow terminal (see :class:`Figures`); text folds onto more lines.
    """
    out = Figures(title=title or None, show_edge=False, caption=caption or None)
    for name in columns:
        out.add_column(name, justify="left" if name in left else "right", overflow="fold")
    return out


# -- periods ------------------------------------------------------------------------------------
class EmptyPeriod(UserError):
    """A period in which the store holds no events: every measure would be 0 / 0."""


def period_coverage(start: date, end: date, first: date | None, last: date | None) -> str | None:
    """How [start, end] meets the store's events [first, last]: None if inside them, else a note.

    Raises :class:`EmptyPeriod` when the two do not meet (or the store holds no events), naming
    the dates the store does hold, so the reader can ask again for a period that has data.
    """
    if first is None or last is None:
        raise EmptyPeriod(f"no events from {start} to {end}: the store holds no events yet")
    if end < start:
        raise EmptyPeriod(f"the period {start} to {end} ends before it starts")
    if end < first or start > last:
        raise EmptyPeriod(
            f"no events from {start} to {end}: the store holds events from {first} to {last}; "
            "ask for a period within those dates"
        )
    if start < first or end > last:
        return f"the store holds events from {first} to {last}, so only part of {start} to {end} has data"
    return None


def check_period(store: Any, start: date, end: date) -> str | None:
    """:func:`period_coverage` of a period against a store (a path, ``Store`` or ``Run``)."""
    from carecontract.run import Run

    first, last = Run.of(store).event_range()
    return period_coverage(start, end, first, last)


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


#: The mark beside a rate outside its funnel plot's 99.8% limits, and its legend.
OUTLIER_MARK = "!"
OUTLIER_LEGEND = f"{OUTLIER_MARK} outside the funnel plot's 99.8% control limits (an outlier)."


#: Below this many columns the measure table uses the measures' short names (``Measure.short``).
WIDE_ENOUGH = 100


def interval(measure: str, low: float | None, high: float | None) -> str:
    """A 95% interval as "77.6–82.3%" (the unit once, so it fits a narrow terminal) or "7.77–8.67"."""
    if low is None or high is None:
        return DASH
    if measure in SCORE_MEASURES:
        return f"{low:.2f}–{high:.2f}"
    return f"{low * 100:.1f}–{high:.1%}"


def print_measures(
    rows: list[dict[str, Any]], keys: list[str], caption: str = "", title: str = "", console: Console = console
) -> None:
    """Measure rows (``compute_measures``): rate, interval, counts, target and verdict per row.

    ``caption`` (which targets were used, and from where) is printed below the table as running
    text, so it wraps like a sentence rather than being centred under the columns.
    """
    out = table(title, ["measure", *keys, "rate", "95% interval", "n / N", "target", "met"], ("measure", *keys))
    outliers = False
    from carecontract.measures.definitions import SHORT_NAMES  # here: keeps ibis out of CLI start-up

    short = SHORT_NAMES if console.width < WIDE_ENOUGH else {}
    shortened: dict[str, str] = {}
    for r in rows:
        measure = r["measure"]
        outlier = bool(r.get("funnel", {}).get("outlier"))
        outliers = outliers or outlier
        if measure in short:
            shortened[short[measure]] = measure
        out.add_row(
            short.get(measure, measure),
            *[str(r.get(k)) for k in keys],
            rate(measure, r["rate"]) + (f" [yellow]{OUTLIER_MARK}[/]" if outlier else ""),
            interval(measure, r["ci_low"], r["ci_high"]),
            _counts(r),
            rate(measure, r["target"]),
            yes_no(r["met"]),
        )
    console.print(out)
    legend = [OUTLIER_LEGEND] if outliers else []
    if shortened:
        legend.append("Short names: " + ", ".join(f"{k} = {v}" for k, v in shortened.items()) + ".")
    for line in legend + ([caption] if caption else []):
        console.print(line, highlight=False, markup=False)
