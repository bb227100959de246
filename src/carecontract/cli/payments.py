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
        list[int] | None,
        typer.Option(help="Contract year(s) to post, by start year (default: every ended year with data)."),
    ] = None,
    until: Annotated[str | None, typer.Option(help="Post what falls due up to this date (default: today).")] = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
) -> None:
    """Post what the payment calendar says is due up to a date: payments on account, then each
    reconciliation (on the store as at its date) with its true-up, into a balanced double-entry ledger."""
    from carecontract.payments.components import payment_components
    from carecontract.payments.settle import post_until

    terms = load(terms_file, overrides)
    require_store(store)
    day = parse_date(until, "--until") if until else None
    with progress_bar(not as_json and sys.stderr.isatty()) as report:
        report("posting payments", 0.0)
        done = post_until(terms, store, day, period, engine, spark_master)
        report("posting payments", 1.0)
    rows = done.rows
    components = payment_components(rows, terms.contract)
    periods = _periods(done)
    if as_json:
        from carecontract.payments.ledger import net_by_account

        out = {
            **done.as_dict(),
            "entries": rows,
            "by_account": net_by_account(rows, by_period=False),
            "periods": periods,
            "components": components,
            "terms": terms.provenance(),
        }
        print(json.dumps(out, default=str))
        return
    _print_components(terms, components, [p["period"] for p in periods] or done.years)
    for p in periods:
        late = " (the store was loaded after that date: read as it stood when posted)" if p["late"] else ""
        console.print(
            f"{contract_year(p['period'])}: {p['stage']}, reconciled on the data as at {p['as_at']}{late}; "
            f"issued {p['issued']}, final on {p['deemed_final']} unless disputed."
            + (f" Restated: {p['notice']['text']}." if p.get("notice") else ""),
            highlight=False,
        )
    for u in done.upcoming[:4]:
        console.print(f"Next: {u['key']} on {u['on']}.", highlight=False)
    state = "[green]balanced to the penny[/]" if done.balanced else f"[red]OFF BY {done.sum_pence} pence[/]"
    console.print(
        f"Posted {len(done.posted)} new event(s) up to {done.until}; ledger: {len(rows):,} postings, {state}; "
        f"terms fingerprint {terms.provenance()['fingerprint']}."
    )


def _periods(done) -> list[dict]:
    """Each year's latest reconciliation, as ``--json`` ``periods`` lists them (status: posted now or before)."""
    now = {e["key"] for e in done.posted}
    latest: dict[int, dict] = {}
    for e in done.entries:
        if e["kind"] in ("reconciliation", "subsequent") and e["year"] in done.years:
            latest[e["year"]] = e
    return [
        {
            "period": y,
            "event": e["key"],
            "version": e["statement_version"],
            "status": "posted" if e["key"] in now else "unchanged",
            "stage": e["result"]["stage"],
            "as_at": e["as_at"],
            "late": e["late"],
            "store_version": e["store_version"],
            "issued": e["issued"],
            "deemed_final": e["deemed_final"],
            "notice": e.get("notice"),
            "result": e["result"],
        }
        for y, e in sorted(latest.items())
    ]


def _print_components(terms, components: list, years: list[int]) -> None:
    """Every component of the posted payments by year (payments.components.component_table), in two
    sections that add up to the same total, a note under each negative amount."""
    from carecontract.payments.components import PAID, WENT, component_table

    t = component_table(components, terms.contract, years)
    grid = table(
        f"{terms.contract.name}: where the money went, £m", ["", *(contract_year(y) for y in t["years"])], left=("",)
    )
    for section in (PAID, WENT):
        for line in (x for x in t["lines"] if x["section"] == section):
            cells = [
                "—"
                if line["pence"][y] is None
                else pence_as_millions(line["pence"][y]) + (f" ({line['note'][y]})" if line["note"][y] else "")
                for y in t["years"]
            ]
            grid.add_row(("  " if section == WENT else "") + line["component"], *cells)
        label = "total paid by the commissioners" if section == PAID else "total went to the parties above"
        grid.add_row(f"[bold]{label}[/]", *(pence_as_millions(t["totals"][y][section]) for y in t["years"]))
    grid.add_row(
        "price (planned, for reference)",
        *("—" if t["price"][y] is None else pence_as_millions(t["price"][y]) for y in t["years"]),
    )
    console.print(grid)
    for i, note in enumerate(t["notes"], 1):
        console.print(f"({i}) {note}", highlight=False)


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
