"""Fair comparisons on the command line: case-mix adjusted measures and Making Data Count SPC charts.

``measures --adjusted`` prints the adjusted table beside the raw one (:func:`print_adjusted`);
``spc [TERMS] --measure MEASURE`` prints a measure's monthly XmR chart with its variation and assurance.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from carecontract.cli.options import (
    EngineOption,
    JsonOption,
    OptionalTermsArgument,
    SetOption,
    StoreOption,
    check_period,
    load,
    parse_date,
    require_store,
)
from carecontract.cli.shell import app
from carecontract.present import console, rate, table

DASH = "–"


def _ratio(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}"


def adjusted_rows(run: Any, first: date, last: date, keys: list[str], only: list[str] | None) -> list:
    """The adjusted rows for ``measures --adjusted`` (by provider when no breakdown is given), from
    the Run's own pathway tables (its engine, Spark master and as-at view)."""
    from carecontract.measures.casemix import ADJUSTED
    from carecontract.measures.fair import adjusted

    wanted = [m for m in (only or ADJUSTED) if m in ADJUSTED]
    return adjusted(run.sources(detail=True), first, last, keys or ["provider"], wanted) if wanted else []


def print_adjusted(rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Raw and case-mix adjusted side by side: raw rate, O/E with its exact interval, adjusted rate."""
    keys = keys or ["provider"]
    out = table(
        "Case-mix adjusted (indirectly standardised: age band, sex, tumour site, deprivation)",
        ["measure", *keys, "raw", "O / E", "ratio (95%)", "adjusted", "funnel"],
        ("measure", *keys),
    )
    for r in rows:
        base = r["base_measure"]
        if r.get("suppressed"):  # the public's: small numbers (publish.disclosure.public_adjusted)
            out.add_row(r["measure"], *[str(r.get(k)) for k in keys], "*", "*", "*", "*", "")
            continue
        out.add_row(
            r["measure"],
            *[str(r.get(k)) for k in keys],
            rate(base, r["raw_rate"]),
            f"{r['observed']} / {r['expected']:.1f}",
            f"{_ratio(r['ratio'])} ({_ratio(r['ci_low'])}–{_ratio(r['ci_high'])})",
            rate(base, r["adjusted_rate"]),
            r.get("funnel", {}).get("outlier") or "",
        )
    console.print(out)
    console.print(
        "O/E > 1: more cases than expected for these patients (better for early stage and survival, worse for "
        "emergency presentation). Funnel: high or low = outside the 99.8% limits on the O/E scale, widened for "
        "overdispersion (SHMI method)."
    )


@app.command()
def spc(
    store: StoreOption,
    start: Annotated[str, typer.Option("--from", help="First day of the period (ISO date).")],
    end: Annotated[str, typer.Option("--to", help="Last day of the period (ISO date).")],
    measure: Annotated[str, typer.Option("--measure", help="Measure id, e.g. cwt_62.")],
    terms_file: OptionalTermsArgument = None,
    log: Annotated[Path | None, typer.Option("--log", help="The decision log (rebasing dates).")] = None,
    provider: Annotated[str | None, typer.Option(help="One provider's chart (default: the whole contract).")] = None,
    adjusted: Annotated[
        bool, typer.Option("--adjusted", help="Chart the case-mix adjusted (indirectly standardised) rate.")
    ] = False,
    overrides: SetOption = None,
    as_json: JsonOption = False,
    engine: EngineOption = "duckdb",
) -> None:
    """A measure's monthly Making Data Count XmR chart: mean, process limits, special causes, icons.

    The target is the contract's (TERMS), else England's standard. The limits are rebased only at
    the dates of `variation` decisions in --log that read "rebase MEASURE from YYYY-MM-DD". With
    --adjusted (early_stage, observed_survival_1y, emergency_presentation, usual_place_of_death) each
    month is O/E × the period's rate, so a month of older or later-diagnosed patients is not a signal.
    """
    from carecontract.measures import standards
    from carecontract.measures.compute import MeasureError, events_table, sources
    from carecontract.measures.fair import spc_chart, spc_rows
    from carecontract.measures.series import SERIES
    from carecontract.measures.spc import rebase_dates
    from carecontract.publish.decisions import DecisionLog
    from carecontract.records.store import Store
    from carecontract.terms.targets import contract_targets

    if measure not in SERIES:
        raise MeasureError(f"no monthly series for {measure!r} (valid: {', '.join(SERIES)})")
    first, last = parse_date(start, "--from"), parse_date(end, "--to")
    require_store(store)
    check_period(store, first, last)
    src_events = events_table(Store(store), engine=engine)  # type: ignore[arg-type]
    contract = load(terms_file, overrides).contract if terms_file else None
    target = contract_targets(contract).get(measure, standards.standard(measure, last))
    cuts = rebase_dates(DecisionLog(log).records(), measure) if log else []
    src = sources(src_events, detail=provider is not None or adjusted)
    try:
        chart = spc_chart(src, measure, first, last, target, cuts, provider, adjusted=adjusted)
    finally:
        src.release()
    rows = spc_rows(chart, measure, adjusted)
    if as_json:
        print(json.dumps(rows, default=str))
        return
    basis = "case-mix adjusted (indirectly standardised) rate" if adjusted else "raw rate"
    out = table(
        f"{measure}: monthly XmR chart of the {basis}, {first} to {last}",
        ["month", "value", "mean", "limits", "special cause"],
    )
    for p in chart.points:
        rules = [
            n
            for n, on in (
                ("outside limits", p.outside_limits),
                ("run", p.run),
                ("trend", p.trend),
                ("2 of 3", p.two_in_three),
            )
            if on
        ]
        out.add_row(
            p.period.strftime("%Y-%m"),
            rate(measure, p.value),
            rate(measure, p.mean),
            f"{rate(measure, p.lpl)}–{rate(measure, p.upl)}",
            ", ".join(rules) + (f" ({p.point_type.removeprefix('special_cause_')})" if rules else ""),
        )
    console.print(out)
    icons = f"Variation: {chart.variation.replace('_', ' ')}."
    if chart.assurance:
        icons += f" Assurance against the target {rate(measure, target)}: {chart.assurance.replace('_', ' ')}."
    if chart.rebased_at:
        icons += " Rebased at " + ", ".join(str(d) for d in chart.rebased_at) + " (decision log)."
    console.print(icons)
