"""The ``carecontract`` command: one sub-command per job.

User mistakes (a missing file, a bad argument, a store built with another key) end with one red
line and a non-zero exit, never a traceback; ``--json`` prints machine-readable results only.
"""

from __future__ import annotations

import json
import re
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

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="What-if override, name=value (a parameter, or a dotted path like stages.1.at_risk_share)."
    ),
]


USER_ERRORS = (UnreadableFile, StoreError, ValueError, FileNotFoundError, PermissionError)  # EngineError too


EngineOption = Annotated[
    str, typer.Option(help="Query engine: duckdb (one machine) or spark (PySpark; local unless --spark-master).")
]
SparkMasterOption = Annotated[
    str | None, typer.Option(help="Spark master URL for a cluster, e.g. spark://host:7077 (see docs/scale.md).")
]


def check_engine(engine: str) -> None:
    """Refuse an unknown --engine before loading anything (an empty store never reaches the engine)."""
    from carecontract.engine import EngineError
    from carecontract.engine import check_engine as check

    try:
        check(engine)
    except EngineError as exc:
        fail(f"--engine {exc}")


def require_store(store: Path) -> None:
    """A clear error, not an empty result, when the store directory holds no store."""
    from carecontract.records.store import Store

    if not Store(store).exists():
        raise StoreError(f"{store}: no store here (run `carecontract ingest FILE --store {store}` first)")


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
        if first is not None:
            last = date(first.year + years, first.month, first.day)
            if last > date.today():
                most = _whole_years(first)
                raise ValueError(
                    f"{years} year(s) from {first} run to {last}, after today, and activity cannot be dated in "
                    f"the future (ingest would quarantine it): use at most {most} year(s) or an earlier --start"
                )
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


def _whole_years(first: date) -> int:
    today = date.today()
    return today.year - first.year - (1 if (today.month, today.day) < (first.month, first.day) else 0)


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

    with user_errors():
        require_store(store)
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


# -- measures -----------------------------------------------------------------------------------
@app.command()
def measures(
    store: Annotated[Path, typer.Option(help="Store directory.")],
    start: Annotated[str, typer.Option("--from", help="First day of the period (ISO date).")],
    end: Annotated[str, typer.Option("--to", help="Last day of the period (ISO date).")],
    by: Annotated[str, typer.Option(help="Breakdown: any of commissioner,provider,tumour_site,imd_quintile.")] = "",
    terms: Annotated[Path | None, typer.Option(help="Contract terms: targets from its outcomes.")] = None,
    overrides: SetOption = None,
    only: Annotated[str, typer.Option(help="Comma-separated measure ids (default: all).")] = "",
    public: Annotated[
        bool, typer.Option("--public", help="Disclosure control: counts < 8 suppressed, others rounded to 5.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
) -> None:
    """Outcome measures for a period, with Wilson 95% intervals, targets and funnel limits."""
    from carecontract.measures.compute import MeasureError, compute_measures

    check_engine(engine)
    targets, provenance = {}, None
    if terms:
        loaded = _load(terms, overrides)
        targets = {o.measure: o.target for o in loaded.contract.outcomes}
        provenance = loaded.provenance()
    with user_errors():
        first, last = _parse_date(start, "--from"), _parse_date(end, "--to")
        require_store(store)
        try:
            rows = compute_measures(
                store, first, last, [b for b in by.split(",") if b], targets, [m for m in only.split(",") if m] or None,
                engine=engine, spark_master=spark_master,
            )  # fmt: skip
        except MeasureError as exc:
            raise ValueError(str(exc)) from None
    if public:
        from carecontract.publish.disclosure import public_measures

        rows = public_measures(rows, [b for b in by.split(",") if b])
    if provenance:
        for row in rows:
            row["terms"] = provenance
    if as_json:
        print(json.dumps(rows, default=str))
        return
    caption = f"targets from {provenance['terms']} (fingerprint {provenance['fingerprint']})" if provenance else ""
    print_measures(rows, [b for b in by.split(",") if b], caption, f"Outcome measures, {first} to {last}")


def print_measures(rows: list[dict[str, Any]], keys: list[str], caption: str = "", title: str = "") -> None:
    table = Table(title=title or None, show_edge=False, caption=caption or None)
    for name in ("measure", *keys, "rate", "95% interval", "n / N", "target", "met"):
        table.add_column(name, justify="left" if name in ("measure", *keys) else "right")
    for r in rows:
        scale = "{:.2f}" if r["measure"] == "patient_experience" else "{:.1%}"

        def fmt(v: float | None, s: str = scale) -> str:
            return "—" if v is None else s.format(v)

        n, d = r.get("numerator"), r["denominator"]
        if d is None:
            counts = "[dim]suppressed[/]"
        elif isinstance(n, int) or (n is None and "suppressed" in r and r["measure"] != "patient_experience"):
            counts = f"{'*' if n is None else f'{n:,}'} / {d:,}"
        else:
            counts = f"n={d:,}"
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "—"}[r["met"]]
        outlier = " [yellow]outlier[/]" if r.get("funnel", {}).get("outlier") else ""
        interval = "—" if r["ci_low"] is None else f"{fmt(r['ci_low'])}–{fmt(r['ci_high'])}"
        cells = [str(r.get(k)) for k in keys]
        table.add_row(r["measure"], *cells, fmt(r["rate"]) + outlier, interval, counts, fmt(r["target"]), met)
    console.print(table)


@app.command()
def explain(
    measure: Annotated[str, typer.Argument(help="Measure id, e.g. cwt_62.")],
    store: Annotated[Path, typer.Option(help="Store directory.")],
    pathway: Annotated[str, typer.Option(help="Pathway id: the referral's record_id (or a death/survey record_id).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Why one pathway counted as it did: clock start, stop, pauses and the verdict."""
    from carecontract.measures.compute import MeasureError
    from carecontract.measures.explain import explain as run_explain

    with user_errors():
        try:
            result = run_explain(measure, store, pathway)
        except MeasureError as exc:
            raise ValueError(str(exc)) from None
    if as_json:
        print(json.dumps(result, default=str))
        return
    console.print(f"[bold]{measure}[/] ({result['definition']}) for {pathway}:")
    console.print(f"  {result['explanation']}")
    for event in result.get("events", []):
        extra = ", ".join(f"{k} {v}" for k, v in event.items() if k not in ("record_id", "event_date", "event_type"))
        console.print(f"    {event['event_date']}  {event['event_type']:<20} {extra}")


# -- payments -----------------------------------------------------------------------------------
@app.command()
def pay(
    terms_file: Annotated[Path, typer.Argument(metavar="TERMS", help="Contract terms YAML.")],
    store: Annotated[Path, typer.Option(help="Store directory.")],
    period: Annotated[
        list[int] | None, typer.Option(help="Contract year(s) to close, by start year (default: all with data).")
    ] = None,
    overrides: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the ledger as JSON.")] = False,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
) -> None:
    """Apply the contract's payment rules and close each period into a balanced double-entry ledger."""
    from carecontract.payments.book import PaymentBook
    from carecontract.records.store import Store

    check_engine(engine)
    terms = _load(terms_file, overrides)
    with user_errors():
        require_store(store)
        years = period or _years_with_data(terms.contract, Store(store))
        with progress_bar(not as_json and sys.stderr.isatty()) as report:
            report("closing periods", 0.0)
            book = PaymentBook(store, terms, engine, spark_master)
            closed = book.close(years)
            report("closing periods", 1.0)
        rows = book.ledger_rows(years)
    by_account: dict[str, int] = {}
    for row in rows:
        by_account[row["account"]] = by_account.get(row["account"], 0) + row["pence"]
    total = sum(r["pence"] for r in rows)
    if as_json:
        print(json.dumps({"entries": rows, "balanced": total == 0, "sum_pence": total,
                          "by_account": dict(sorted(by_account.items())), "periods": closed,
                          "terms": terms.provenance()}, default=str))  # fmt: skip
        return
    table = Table(title=f"{terms.contract.name}: payments by contract year, £m", show_edge=False)
    for name in ("year", "stage", "close", "paid", "prime keeps", "VAT", "subcontractors", "outcomes"):
        table.add_column(name, justify="left" if name in ("year", "stage", "close") else "right")

    def millions(pence: int) -> str:
        return f"{pence / 1e8:,.2f}"

    for entry in closed:
        r = entry["result"]
        table.add_row(f"{entry['period']}/{(entry['period'] + 1) % 100:02d}", r["stage"],
                      f"v{entry['version']} {entry['status']}", millions(r["paid_by_commissioners_pence"]),
                      millions(r["management_pence"]), millions(r["vat_pence"]),
                      millions(sum(r["to_subcontractors_pence"].values())),
                      "—" if r["achievement"] is None else f"{r['achievement']:.0%}")  # fmt: skip
    console.print(table)
    state = "[green]balanced to the penny[/]" if total == 0 else f"[red]OFF BY {total} pence[/]"
    console.print(f"Ledger: {len(rows):,} postings, {state}; terms fingerprint {terms.provenance()['fingerprint']}.")


def _years_with_data(contract, store) -> list[int]:
    """The contract years the store covers, or a clear error if there are none."""
    from carecontract.payments.book import covered_years

    years = covered_years(contract, store)
    if not years:
        first, last = store.event_range()
        if first is None:
            raise ValueError(f"{store.root}: the store has no accepted events to pay on")
        raise ValueError(
            f"{store.root}: its events ({first} to {last}) cover no ended year of {contract.name} "
            f"({contract.term.start} to {contract.term.end}); synthesise data for those years with --start"
        )
    return years


@app.command()
def baseline(
    store: Annotated[Path, typer.Option(help="Store directory.")],
    terms_file: Annotated[Path | None, typer.Option("--terms", help="Terms: contract years and payment flows.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write activity, patient and payment flows as CSV and Parquet here.")
    ] = None,
    excel: Annotated[Path | None, typer.Option(help="Also write an Excel workbook (one sheet each).")] = None,
    overrides: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
) -> None:
    """Activity and cost by year, tumour site, service, provider, commissioner; patient and payment flows."""
    from carecontract.baseline.compute import build_baseline
    from carecontract.baseline.export import export

    check_engine(engine)
    terms = _load(terms_file, overrides) if terms_file else None
    with user_errors():
        require_store(store)
        result = build_baseline(store, terms, engine, spark_master)
        written = export(result, out, excel) if (out or excel) else []
    if as_json:
        print(json.dumps(result.as_dict(), default=str))
        return
    by_year: dict[int, list[float]] = {}
    for row in result.activity:
        totals = by_year.setdefault(row["year"], [0, 0.0])
        totals[0] += row["events"]
        totals[1] += row["cost_gbp"]
    table = Table(title="Activity and cost by contract year", show_edge=False)
    for name in ("year", "events", "cost £m"):
        table.add_column(name, justify="right")
    for year, (events, cost) in sorted(by_year.items()):
        table.add_row(str(year), f"{events:,}", f"{cost / 1e6:,.2f}")
    console.print(table)
    flows = Table(title="Patient flows between providers (top 10)", show_edge=False)
    for name in ("from", "to", "moves", "pathways"):
        flows.add_column(name, justify="left" if name in ("from", "to") else "right")
    for f in result.patient_flows[:10]:
        flows.add_row(f["from_provider"], f["to_provider"], f"{f['moves']:,}", f"{f['pathways']:,}")
    console.print(flows)
    if terms and not result.payment_flows:
        console.print(f"No payment flows yet: run `carecontract pay {terms_file} --store {store}` first.")
    for path in written:
        console.print(f"  wrote {path}")


@app.command()
def accountability(
    store: Annotated[Path, typer.Option(help="Store directory.")],
    terms_file: Annotated[Path, typer.Option("--terms", help="Contract terms YAML.")],
    start: Annotated[str | None, typer.Option("--from", help="First day (default: the contract's start).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day (default: the contract's end).")] = None,
    overrides: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """For each commissioner, every subcontractor's activity, cost, payments received and outcomes."""
    from carecontract.baseline.accountability import accountability as run_accountability

    terms = _load(terms_file, overrides)
    with user_errors():
        require_store(store)
        first = _parse_date(start, "--from") if start else terms.contract.term.start
        last = _parse_date(end, "--to") if end else terms.contract.term.end
        rows = run_accountability(store, terms, first, last)
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table(title=f"{terms.contract.name}: who did what for whom, {first} to {last}", show_edge=False)
    for name in ("commissioner", "subcontractor", "events", "cost £m", "paid £m", "targets met"):
        table.add_column(name, justify="left" if name in ("commissioner", "subcontractor") else "right")
    for r in rows:
        met = [o["met"] for o in r["outcomes"].values() if o["met"] is not None]
        table.add_row(r["commissioner"], r["subcontractor"], f"{r['events']:,}", f"{r['cost_gbp'] / 1e6:,.2f}",
                      f"{r['payment_received_gbp'] / 1e6:,.2f}", f"{sum(met)}/{len(met)}" if met else "—")  # fmt: skip
    console.print(table)


# -- viability ----------------------------------------------------------------------------------
@app.command()
def stress(
    terms_file: Annotated[Path, typer.Argument(metavar="TERMS", help="Contract terms YAML (with a risks: section).")],
    runs: Annotated[int, typer.Option(help="Monte Carlo runs.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same results.")] = 0,
    overrides: SetOption = None,
    store: Annotated[Path | None, typer.Option(help="Calibrate the first-year cost from this store.")] = None,
    charts: Annotated[Path, typer.Option(help="Where to save the fan and tornado charts (HTML and PNG).")] = Path(
        "stress-charts"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Monte Carlo stress test of the whole contract life: chance of deficit and size of the funding gap."""
    from carecontract.records.store import Store
    from carecontract.viability.charts import terminal_fan, terminal_tornado, write_charts
    from carecontract.viability.simulate import calibrate_from_store
    from carecontract.viability.simulate import stress as run_stress

    terms = _load(terms_file, overrides)
    with user_errors():
        if store:
            require_store(store)
        baseline_cost, scope_factor = calibrate_from_store(terms.contract, Store(store)) if store else (None, None)
        with progress_bar(not as_json and sys.stderr.isatty()) as report:
            report("simulating", 0.0)
            summary = run_stress(terms.contract, runs, seed, baseline_cost, scope_factor=scope_factor)
            report("simulating", 1.0)
        written = write_charts(terms.contract.name, summary, charts)
    summary.pop("_cumulative")
    summary["terms"] = terms.provenance()
    summary["charts"] = [str(p) for p in written]
    if as_json:
        print(json.dumps(summary))
        return
    m = 1e6
    console.print(
        f"[bold]{terms.contract.name}[/]: {summary['runs']:,} runs, seed {seed}. "
        f"Probability of a deficit: [bold]{summary['deficit_probability']:.0%}[/]; expected funding gap "
        f"£{summary['expected_gap_gbp'] / m:,.1f}m (median £{summary['gap_p50_gbp'] / m:,.1f}m, "
        f"90th percentile £{summary['gap_p90_gbp'] / m:,.1f}m); first deficit year (median): "
        f"{summary['first_deficit_year_p50'] or '—'}; first-year shortfall (median) "
        f"£{summary['first_year_gap_p50_gbp'] / m:,.1f}m. First-year cost from {summary['baseline_cost_source']}."
    )
    table = Table(title="Year by year, £m", show_edge=False)
    for name in ("year", "income", "care cost", "surplus", "cumulative p10", "p50", "p90", "P(deficit)"):
        table.add_column(name, justify="right")
    for y in summary["by_year"]:
        table.add_row(str(y["year"]), f"{y['income_mean_gbp'] / m:,.1f}", f"{y['care_cost_mean_gbp'] / m:,.1f}",
                      f"{y['surplus_mean_gbp'] / m:,.1f}", f"{y['cumulative_p10_gbp'] / m:,.1f}",
                      f"{y['cumulative_p50_gbp'] / m:,.1f}", f"{y['cumulative_p90_gbp'] / m:,.1f}",
                      f"{y['deficit_probability']:.0%}")  # fmt: skip
    console.print(table)
    for line in terminal_fan(summary):
        console.print(line, highlight=False)
    if summary["sensitivity"]:
        for line in terminal_tornado(summary):
            console.print(line, highlight=False)
        tornado = Table(title="Biggest drivers: expected gap with the risk at its 10th / 90th percentile, £m",
                        show_edge=False)  # fmt: skip
        for name in ("risk", "low", "high"):
            tornado.add_column(name, justify="left" if name == "risk" else "right")
        for r in summary["sensitivity"]:
            tornado.add_row(r["parameter"], f"{r['low'] / m:,.1f}", f"{r['high'] / m:,.1f}")
        console.print(tornado)
    console.print("Charts: " + ", ".join(summary["charts"]))


# -- report -------------------------------------------------------------------------------------
@app.command()
def report(
    terms_file: Annotated[Path, typer.Argument(metavar="TERMS", help="Contract terms YAML.")],
    store: Annotated[Path, typer.Option(help="Store directory.")],
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
    public: Annotated[bool, typer.Option("--public", help="Disclosure control for publication.")] = False,
    runs: Annotated[int, typer.Option(help="Stress-test runs.")] = 5000,
    log: Annotated[Path, typer.Option("--log", help="Decision log to include.")] = Path("decisions.jsonl"),
    overrides: SetOption = None,
) -> None:
    """One self-contained HTML report (works offline): terms, data quality, flows, outcomes, money, viability."""
    from carecontract.publish.report import build_report

    terms = _load(terms_file, overrides)
    with user_errors():
        require_store(store)
        with progress_bar(sys.stderr.isatty()) as progress:
            progress("report", 0.0)
            text = build_report(terms, store, public=public, runs=runs, decision_log=log if log.exists() else None)
            progress("report", 1.0)
        out.write_text(text)
    edition = "public" if public else "restricted"
    console.print(f"Wrote the {edition} report to {out} ({out.stat().st_size / 1e6:.1f} MB); open it in a browser.")


@app.command()
def publish(
    terms_file: Annotated[Path, typer.Argument(metavar="TERMS", help="Contract terms YAML.")],
    store: Annotated[Path, typer.Option(help="Store directory (its closed payment periods are published).")],
    ocds: Annotated[Path, typer.Option(help="The OCDS release package (JSON) to write.")] = Path("release.json"),
    log: Annotated[Path, typer.Option("--log", help="Decision log to include.")] = Path("decisions.jsonl"),
    ocid_prefix: Annotated[str, typer.Option(help="Your registered OCID prefix (ocds-xxxxxx).")] = "ocds-carect",
    overrides: SetOption = None,
) -> None:
    """Publish the contract as an Open Contracting Data Standard release package, with the decision log."""
    from carecontract.publish.ocds import PublishError, release_package

    terms = _load(terms_file, overrides)
    with user_errors():
        require_store(store)
        if not re.fullmatch(r"ocds-[a-z0-9]{6}", ocid_prefix):
            raise ValueError(f"--ocid-prefix {ocid_prefix!r} is not an OCID prefix (ocds- and six letters or digits)")
        try:
            package = release_package(terms, store, str(log) if log.exists() else None, ocid_prefix)
        except PublishError as exc:
            raise ValueError(str(exc)) from None
        ocds.write_text(json.dumps(package, indent=2, ensure_ascii=False))
    done = package["releases"][-1]["contracts"][0]["implementation"]
    decisions = package.get("decisionLog", {}).get("records", 0)
    counts = f"{len(done['transactions'])} transactions, {len(done['milestones'])} gate milestone(s)"
    console.print(f"Wrote {len(package['releases'])} releases to {ocds}: {counts}, {decisions} decision(s).")


@app.command()
def serve(
    store: Annotated[Path, typer.Option(help="Store directory.")],
    terms_files: Annotated[list[Path], typer.Option("--terms", help="Contract terms YAML (repeat for several).")],
    tokens: Annotated[Path | None, typer.Option(help="API tokens JSON (default: made in the store).")] = None,
    log: Annotated[Path, typer.Option("--log", help="Decision log, shown to auditors.")] = Path("decisions.jsonl"),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    runs: Annotated[int, typer.Option(help="Stress-test runs per contract.")] = 5000,
) -> None:
    """Serve the API (OpenAPI docs at /docs) and the dashboard, each role seeing what it is entitled to."""
    import uvicorn

    from carecontract.service import Tokens, create_app

    loaded = [_load(f, None) for f in terms_files]
    with user_errors():
        require_store(store)
        path = tokens or store / "service-tokens.json"
        made = not path.exists()
        known = Tokens.load(path) if tokens else Tokens.load_or_create(path, loaded)  # TokenFileError: one line
    app_ = create_app(store, loaded, known, decision_log=log if log.exists() else None, stress_runs=runs)
    who = ", ".join(p.describe() for _, p in known.listing())
    console.print(f"Tokens: {path}{' (made now, mode 600)' if made else ''}: {who}. No token: the public view.")
    console.print(f"Dashboard http://{host}:{port}/  API docs http://{host}:{port}/docs  (Ctrl+C to stop)")
    uvicorn.run(app_, host=host, port=port, log_level="warning")


# -- decision log -------------------------------------------------------------------------------
decisions_app = typer.Typer(help="The tamper-evident decision log.", no_args_is_help=True)
app.add_typer(decisions_app, name="decisions")
LogOption = Annotated[Path, typer.Option("--log", help="The decision log file.")]


@app.command()
def decide(
    terms_file: Annotated[Path, typer.Argument(metavar="TERMS", help="The contract the decision is about.")],
    kind: Annotated[str, typer.Option(help="business_case, options_appraisal, consultation, gate or variation.")],
    text: Annotated[str, typer.Option(help="What was decided, by whom, and why.")],
    attach: Annotated[Path | None, typer.Option(help="A document to attach (hashed and copied in).")] = None,
    who: Annotated[str | None, typer.Option(help="Who took the decision.")] = None,
    overrides: SetOption = None,
    log: LogOption = Path("decisions.jsonl"),
) -> None:
    """Append a hash-chained record of a decision to the log (its terms' fingerprint includes any --set)."""
    from carecontract.publish.decisions import DecisionLog, DecisionLogError

    terms = _load(terms_file, overrides)
    with user_errors():
        try:
            record = DecisionLog(log).append(kind, text, terms.contract.name, terms.fingerprint, attach, who)
        except DecisionLogError as exc:
            raise ValueError(str(exc)) from None
    console.print(f"Recorded decision {record['seq']} ({kind}) in {log}: hash {record['hash'][:16]}…")


@decisions_app.command("verify")
def decisions_verify(log: LogOption = Path("decisions.jsonl")) -> None:
    """Check that no record was edited, removed or reordered, and every attachment is unchanged."""
    from carecontract.publish.decisions import DecisionLog

    book = DecisionLog(log)
    problems = book.verify()
    if problems:
        for problem in problems:
            err.print(f"[bold red]tampered:[/] {log}: {problem}", highlight=False)
        raise typer.Exit(1)
    records = book.records()
    head = records[-1]["hash"][:16] + "…" if records else "empty"
    console.print(f"[green]✓[/] {log}: {len(records)} record(s) intact; head {head}")


# -- terms --------------------------------------------------------------------------------------
terms_app = typer.Typer(
    help="Contract terms as code: check a terms file, show parameters in force.", no_args_is_help=True
)
app.add_typer(terms_app, name="terms")


def _load(file: Path, overrides: list[str] | None):
    from carecontract.terms import TermsError, load_terms

    try:
        return load_terms(file, overrides or [])
    except TermsError as exc:
        for problem in exc.problems:
            err.print(f"[bold red]error:[/] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@terms_app.command("check")
def terms_check(
    file: Annotated[Path, typer.Argument(help="Terms YAML file.")],
    overrides: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Validate a terms file and summarise it: parties, stages, value per year, scope by year."""
    terms = _load(file, overrides)
    c = terms.contract
    summary = {
        **terms.provenance(),
        "commissioners": [{"code": x.code, "name": x.name, "share": x.share} for x in c.commissioners],
        "prime": {"code": c.prime.code, "name": c.prime.name},
        "subcontractors": [{"code": x.code, "name": x.name} for x in c.subcontractors],
        "term": {"start": c.term.start.isoformat(), "end": c.term.end.isoformat(), "years": c.term.years},
        "value_gbp": str(c.value.total_gbp),
        "value_per_year": {str(y): str(v) for y, v in c.value_per_year().items()},
        "stages": [s.model_dump(mode="json") for s in c.stages],
        "scope_by_year": {str(d.year): c.scope_at(d) for d in c.contract_years()},
        "outcomes": [o.model_dump(mode="json") for o in c.outcomes],
    }
    if as_json:
        print(json.dumps(summary))
        return
    console.print(f"[green]✓[/] [bold]{c.name}[/] is valid ({file}, fingerprint {terms.fingerprint})")
    if terms.overrides:
        console.print(f"  what-if overrides: {', '.join(terms.overrides)}")
    console.print(f"  prime: {c.prime.name} ({c.prime.code})")
    console.print("  commissioners: " + ", ".join(f"{x.name} {x.share:.0%}" for x in c.commissioners))
    if c.subcontractors:
        console.print("  subcontractors: " + ", ".join(f"{x.name} ({x.code})" for x in c.subcontractors))
    for s in c.stages:
        if s.kind == "fee":
            gate = s.gate.model_dump(exclude_defaults=True)
            console.print(
                f"  stage {s.name}: fee £{s.fee_gbp_per_year:,.0f}/year, up to {s.max_years} years; gate {gate}"
            )
        else:
            console.print(f"  stage {s.name}: outcomes, {s.at_risk_share:.0%} of the budget at risk")
    table = Table(title=f"{c.term.start} for {c.term.years} years: £{c.value.total_gbp:,.0f}", show_edge=False)
    for name in ("contract year", "value £", "tumour sites in scope"):
        table.add_column(name, justify="right" if name == "value £" else "left")
    values = c.value_per_year()
    for d in c.contract_years():
        sites = c.scope_at(d)
        shown = "all" if len(sites) > 10 else ", ".join(sites)
        table.add_row(f"{d.year}/{(d.year + 1) % 100:02d}", f"{values[d.year]:,.0f}", shown)
    console.print(table)


@terms_app.command("show")
def terms_show(
    file: Annotated[Path, typer.Argument(help="Terms YAML file.")],
    at: Annotated[str, typer.Option("--at", help="Date (ISO) to resolve parameters on.")],
    overrides: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Every parameter in force on a date (the latest entry on or before it)."""
    from carecontract.terms.parameters import PARAMETERS

    terms = _load(file, overrides)
    with user_errors():
        when = _parse_date(at, "--at")
    values = terms.contract.parameters_at(when)
    if as_json:
        print(json.dumps({**terms.provenance(), "at": when.isoformat(), "parameters": values}))
        return
    table = Table(title=f"{terms.contract.name}: parameters in force on {when}", show_edge=False)
    for name in ("parameter", "value", "unit", "meaning"):
        table.add_column(name, justify="right" if name == "value" else "left")
    for name, value in values.items():
        spec = PARAMETERS[name]
        shown = "not yet set" if value is None else (f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}")
        table.add_row(name, shown, spec.unit, spec.description)
    console.print(table)
    if terms.overrides:
        console.print(f"what-if overrides: {', '.join(terms.overrides)} (fingerprint {terms.fingerprint})")


@terms_app.command("gate")
def terms_gate(
    file: Annotated[Path, typer.Argument(help="Terms YAML file.")],
    store: Annotated[Path, typer.Option(help="Store directory.")],
    start: Annotated[str, typer.Option("--from", help="First day of the period the measures cover.")],
    end: Annotated[str, typer.Option("--to", help="Last day of the period.")],
    overrides: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Is the gate from the fee stage to the outcomes stage passed? Each aim measured from the store."""
    from carecontract.terms.gate import evaluate_gate

    terms = _load(file, overrides)
    with user_errors():
        first, last = _parse_date(start, "--from"), _parse_date(end, "--to")
        require_store(store)
        result = {**evaluate_gate(terms.contract, store, first, last), **terms.provenance()}
    if as_json:
        print(json.dumps(result))
        return
    verdict = "[green]passed[/]" if result["passed"] else "[red]not passed[/]"
    table = Table(title=f"{terms.contract.name}: gate after {result['stage']}, {first} to {last}: {verdict}",
                  show_edge=False)  # fmt: skip
    for name in ("aim", "needed", "measured", "passed"):
        table.add_column(name, justify="left" if name == "aim" else "right")
    for c in result["criteria"]:
        measured = "—" if c["value"] is None else f"{c['value']:.4g}"
        table.add_row(c["name"], f"{c['direction']} {c['threshold']:g}", measured,
                      "[green]yes[/]" if c["passed"] else "[red]no[/]")  # fmt: skip
    console.print(table)


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
    """The whole pipeline on a synthetic Staffordshire-sized economy: ingest, quality, measures, pay, report."""
    from carecontract.demo import run_demo

    with user_errors():
        run_demo(out, population, years, seed, error_rate, console, err)


if __name__ == "__main__":  # pragma: no cover
    app()
