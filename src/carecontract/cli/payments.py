"""Commands for money: pay a contract's years, the baseline of activity and cost, who did what for whom."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from carecontract.cli.options import (
    AsAtOption,
    EngineOption,
    JsonOption,
    LegacyTermsArgument,
    OptionalTermsArgument,
    SetOption,
    SparkMasterOption,
    StoreOption,
    TermsArgument,
    TermsFlag,
    check_period,
    load,
    output_file,
    parse_date,
    require_store,
    store_at,
    terms_path,
)
from carecontract.cli.shell import app
from carecontract.present import console, contract_year, pence_as_millions, pounds_as_millions, progress_bar, table


@app.command()
def pay(
    terms_file: TermsArgument,
    store: StoreOption,
    period: Annotated[
        list[int] | None, typer.Option(help="Contract year(s) to close, by start year (default: all with data).")
    ] = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
    as_at: AsAtOption = None,
) -> None:
    """Apply the contract's payment rules and close each period into a balanced double-entry ledger."""
    from carecontract.payments.close import close_periods

    terms = load(terms_file, overrides)
    view = store_at(store, as_at)
    with progress_bar(not as_json and sys.stderr.isatty()) as report:
        run = close_periods(terms, view, period, engine, spark_master, progress=report)
    if as_json:
        print(json.dumps({**run.as_dict(), "terms": terms.provenance()}, default=str))
        return
    paid = table(
        f"{terms.contract.name}: payments by contract year, £m",
        ["year", "stage", "close", "paid", "prime keeps", "VAT", "subcontractors", "outcomes"],
        left=("year", "stage", "close"),
    )
    for entry in run.periods:
        r = entry["result"]
        paid.add_row(
            contract_year(entry["period"]),
            r["stage"],
            f"v{entry['version']} {entry['status']}",
            pence_as_millions(r["paid_by_commissioners_pence"]),
            pence_as_millions(r["management_pence"]),
            pence_as_millions(r["vat_pence"]),
            pence_as_millions(sum(r["to_subcontractors_pence"].values())),
            "—" if r["achievement"] is None else f"{r['achievement']:.0%}",
        )
    console.print(paid)
    state = "[green]balanced to the penny[/]" if run.balanced else f"[red]OFF BY {run.sum_pence} pence[/]"
    fingerprint = terms.provenance()["fingerprint"]
    console.print(f"Ledger: {len(run.entries):,} postings, {state}; terms fingerprint {fingerprint}.")


@app.command()
def baseline(
    store: StoreOption,
    terms_file: OptionalTermsArgument = None,
    out: Annotated[
        Path | None, typer.Option(help="Write activity, patient and payment flows as CSV and Parquet here.")
    ] = None,
    excel: Annotated[
        Path | None, typer.Option(help="Also write an Excel workbook for finance teams (pounds, one sheet per table).")
    ] = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
    terms_flag: TermsFlag = None,
    as_at: AsAtOption = None,
) -> None:
    """Activity and cost by year, tumour site, service, provider, commissioner; patient and payment flows.

    With TERMS, years are the contract's and the ledger's payment flows are included.
    """
    from carecontract.baseline.compute import build_baseline, totals_by_year
    from carecontract.baseline.export import export

    terms_file = terms_path(terms_file, terms_flag, required=False)
    terms = load(terms_file, overrides) if terms_file else None
    view = store_at(store, as_at)
    if excel:
        output_file(excel, "--excel")
    result = build_baseline(view, terms, engine, spark_master)
    written = export(result, out, excel, terms.contract if terms else None) if (out or excel) else []
    if as_json:
        print(json.dumps(result.as_dict(), default=str))
        return
    years = table("Activity and cost by contract year", ["year", "events", "cost £m"])
    for year, (events, cost) in totals_by_year(result.activity).items():
        years.add_row(str(year), f"{events:,}", pounds_as_millions(cost))
    console.print(years)
    if terms:
        _print_scope(result.activity, terms)
    flows = table("Patient flows between providers (top 10)", ["from", "to", "moves", "pathways"], ("from", "to"))
    for f in result.patient_flows[:10]:
        flows.add_row(f["from_provider"], f["to_provider"], f"{f['moves']:,}", f"{f['pathways']:,}")
    console.print(flows)
    if terms and not result.payment_flows:
        console.print(f"No payment flows yet: run `carecontract pay {terms_file} --store {store}` first.")
    for path in written:
        console.print(f"  wrote {path}")


def _print_scope(activity: list, terms) -> None:
    """Recorded cost in and out of the contract's scope beside the price (baseline.compute.scope_split)."""
    from carecontract.baseline.compute import OUT_OF_SCOPE, scope_split

    split = table(
        "Recorded cost against the price, £m",
        ["year", "in scope", *(f"out: {k}" for k in OUT_OF_SCOPE), "price", "in scope ÷ price"],
    )
    for r in scope_split(activity, terms):
        out = [pounds_as_millions(r["out_of_scope_gbp"][k]) for k in OUT_OF_SCOPE]
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "—"
        split.add_row(
            str(r["year"]), pounds_as_millions(r["in_scope_gbp"]), *out, pounds_as_millions(r["price_gbp"]), ratio
        )
    console.print(split)


@app.command()
def accountability(
    store: StoreOption,
    terms_file: LegacyTermsArgument = None,
    start: Annotated[str | None, typer.Option("--from", help="First day (default: the contract's start).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day (default: the contract's end).")] = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
    terms_flag: TermsFlag = None,
) -> None:
    """For each commissioner, every subcontractor's activity, cost, payments received and outcomes."""
    from carecontract.baseline.accountability import accountability as run_accountability

    terms = load(terms_path(terms_file, terms_flag), overrides)
    require_store(store)
    first = parse_date(start, "--from") if start else terms.contract.term.start
    last = parse_date(end, "--to") if end else terms.contract.term.last_day
    check_period(store, first, last)
    rows = run_accountability(store, terms, first, last)
    if as_json:
        print(json.dumps(rows, default=str))
        return
    who = table(
        f"{terms.contract.name}: who did what for whom, {first} to {last}",
        ["commissioner", "subcontractor", "events", "cost £m", "paid £m", "targets met"],
        left=("commissioner", "subcontractor"),
    )
    for r in rows:
        met = [o["met"] for o in r["outcomes"].values() if o["met"] is not None]
        who.add_row(
            r["commissioner"],
            r["subcontractor"],
            f"{r['events']:,}",
            pounds_as_millions(r["cost_gbp"]),
            pounds_as_millions(r["payment_received_gbp"]),
            f"{sum(met)}/{len(met)}" if met else "—",
        )
    console.print(who)
    from carecontract.terms.targets import targets_rule

    console.print(targets_rule(terms.contract, Path(terms.source).name), highlight=False)
